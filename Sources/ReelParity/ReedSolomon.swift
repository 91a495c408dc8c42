import CIsal
import Glibc
import ReelCore

/// A systematic Reed–Solomon erasure code over GF(2^8) with ISA-L's Cauchy matrix: k data
/// shards and m parity shards (k + m ≤ 255); any k of the k + m shards give back the rest.
/// The encoding matrix is ISA-L's `gf_gen_cauchy1_matrix(k + m, k)`: the identity on top,
/// then row k + i, column j = 1 / ((k + i) ⊕ j) in GF(2^8) with polynomial 0x11d
/// (docs/archive-format.md, "Parity"). Any reader with that definition decodes Reel's
/// parity; ISA-L is only the fast way to compute it.
///
/// The array methods copy; the pointer methods (`encode(length:data:parity:)` and friends)
/// work in place on caller buffers and are what archive parity uses.
package struct ReedSolomon: Sendable {
  package let dataShards: Int
  package let parityShards: Int
  /// (k + m) × k, row-major: identity rows, then the parity rows.
  private let matrix: [UInt8]
  /// `ec_init_tables` of the m parity rows: 32 bytes per coefficient.
  private let encodeTables: [UInt8]

  package static let maximumShards = 255

  package init(dataShards: Int, parityShards: Int) throws {
    guard dataShards >= 1, parityShards >= 1, dataShards + parityShards <= Self.maximumShards else {
      throw ReelError(
        .usage,
        "Reed–Solomon needs at least 1 data and 1 parity shard and at most \(Self.maximumShards) in all; "
          + "got \(dataShards) data and \(parityShards) parity shards",
        remedy: "choose k ≥ 1, m ≥ 1, k + m ≤ \(Self.maximumShards)")
    }
    self.dataShards = dataShards
    self.parityShards = parityShards
    let total = dataShards + parityShards
    var matrix = [UInt8](repeating: 0, count: total * dataShards)
    matrix.withUnsafeMutableBufferPointer {
      gf_gen_cauchy1_matrix($0.baseAddress, Int32(total), Int32(dataShards))
    }
    self.matrix = matrix
    self.encodeTables = Self.tables(rows: Array(matrix[(dataShards * dataShards)...]), columns: dataShards)
  }

  private static func tables(rows: [UInt8], columns: Int) -> [UInt8] {
    let rowCount = rows.count / columns
    var tables = [UInt8](repeating: 0, count: 32 * columns * rowCount)
    var rows = rows
    rows.withUnsafeMutableBufferPointer { rowsBuffer in
      tables.withUnsafeMutableBufferPointer {
        ec_init_tables(Int32(columns), Int32(rowCount), rowsBuffer.baseAddress, $0.baseAddress)
      }
    }
    return tables
  }

  /// The coefficient of the encoding matrix at (row, column): row < k is the identity.
  package func coefficient(row: Int, column: Int) -> UInt8 {
    matrix[row * dataShards + column]
  }

  // MARK: Arrays (copying)

  /// The m parity shards of k data shards; a data shard shorter than `shardSize` counts
  /// as zero-padded to it.
  package func encode(data: [[UInt8]], shardSize: Int) -> [[UInt8]] {
    precondition(data.count == dataShards, "encode needs exactly \(dataShards) data shards")
    let input = ShardBlock(shards: data.map { Optional($0) }, shardSize: shardSize)
    let output = ShardBlock(count: parityShards, shardSize: shardSize)
    encode(length: shardSize, data: input.pointers, parity: output.pointers)
    return output.arrays()
  }

  /// Streaming: adds data shard `dataIndex`'s contribution to `parity` (m shards that
  /// start zeroed). After every data shard was added once, `parity` equals `encode`'s.
  package func update(parity: inout [[UInt8]], dataIndex: Int, shard: [UInt8]) {
    precondition(parity.count == parityShards, "update needs exactly \(parityShards) parity shards")
    let shardSize = parity.map(\.count).max() ?? 0
    let block = ShardBlock(shards: parity.map { Optional($0) }, shardSize: shardSize)
    let input = ShardBlock(shards: [shard], shardSize: shardSize)
    update(length: shardSize, dataIndex: dataIndex, shard: input.pointers[0], parity: block.pointers)
    parity = block.arrays()
  }

  /// Fills every nil slot of `shards` (k + m of them, data first) from the others.
  /// Throws when more than m are nil: nothing is changed then.
  package func reconstruct(_ shards: inout [[UInt8]?], shardSize: Int) throws {
    precondition(shards.count == dataShards + parityShards, "reconstruct needs k + m slots")
    let erased = shards.indices.filter { shards[$0] == nil }
    if erased.isEmpty { return }
    let block = ShardBlock(shards: shards, shardSize: shardSize)
    try reconstruct(length: shardSize, shards: block.pointers, erased: erased)
    let arrays = block.arrays()
    for index in erased { shards[index] = arrays[index] }
  }

  // MARK: Pointers (in place)

  /// Parity of `length` bytes: `data` has k pointers, `parity` m.
  package func encode(
    length: Int, data: [UnsafeMutablePointer<UInt8>], parity: [UnsafeMutablePointer<UInt8>]
  ) {
    precondition(data.count == dataShards && parity.count == parityShards)
    var sources: [UnsafeMutablePointer<UInt8>?] = data
    var destinations: [UnsafeMutablePointer<UInt8>?] = parity
    encodeTables.withUnsafeBufferPointer { tables in
      ec_encode_data(
        Int32(length), Int32(dataShards), Int32(parityShards), UnsafeMutablePointer(mutating: tables.baseAddress),
        &sources, &destinations)
    }
  }

  /// Adds data shard `dataIndex` (`length` bytes at `shard`) into the m parity buffers.
  package func update(
    length: Int, dataIndex: Int, shard: UnsafeMutablePointer<UInt8>, parity: [UnsafeMutablePointer<UInt8>]
  ) {
    precondition(dataIndex >= 0 && dataIndex < dataShards && parity.count == parityShards)
    var destinations: [UnsafeMutablePointer<UInt8>?] = parity
    // ISA-L only reads the tables; a `var` copy passed inout would copy them every call.
    encodeTables.withUnsafeBufferPointer { tables in
      ec_encode_data_update(
        Int32(length), Int32(dataShards), Int32(parityShards), Int32(dataIndex),
        UnsafeMutablePointer(mutating: tables.baseAddress), shard, &destinations)
    }
  }

  /// Rewrites the `erased` slots of `shards` (k + m pointers, data first, `length` bytes
  /// each) from the others. Throws when more than m slots are erased.
  package func reconstruct(length: Int, shards: [UnsafeMutablePointer<UInt8>], erased: [Int]) throws {
    precondition(shards.count == dataShards + parityShards)
    let erasedSet = Set(erased)
    guard erasedSet.count <= parityShards else {
      throw ReelError(
        .corrupt,
        "\(erasedSet.count) of \(dataShards + parityShards) shards are lost but parity can rebuild at most \(parityShards)",
        remedy: "read the damaged region again or use another copy")
    }
    if erasedSet.isEmpty { return }
    guard erasedSet.allSatisfy({ $0 >= 0 && $0 < shards.count }) else {
      preconditionFailure("erased shard index out of range")
    }
    let k = dataShards
    let lostData = erasedSet.filter { $0 < k }.sorted()
    let lostParity = erasedSet.filter { $0 >= k }.sorted()
    if !lostData.isEmpty {
      // Solve only for the lost data shards: with e of them lost, e intact parity rows R
      // give p_R = B·d_lost ⊕ C·d_known (B = A[R][lost], C = A[R][known]), so
      // d_lost = B⁻¹·p_R ⊕ (B⁻¹·C)·d_known. An e × e inverse instead of k × k keeps a
      // stripe with a few losses as cheap as encoding them.
      let e = lostData.count
      let rows = (k..<(k + parityShards)).filter { !erasedSet.contains($0) }.prefix(e)
      let known = (0..<k).filter { !erasedSet.contains($0) }
      var b = [UInt8](repeating: 0, count: e * e)
      for (r, row) in rows.enumerated() {
        for (c, column) in lostData.enumerated() { b[r * e + c] = matrix[row * k + column] }
      }
      var inverse = [UInt8](repeating: 0, count: e * e)
      let singular = b.withUnsafeMutableBufferPointer { bBuffer in
        inverse.withUnsafeMutableBufferPointer { gf_invert_matrix(bBuffer.baseAddress, $0.baseAddress, Int32(e)) }
      }
      // Every square submatrix of a Cauchy matrix is invertible; failing here is a bug.
      precondition(singular == 0, "Reed–Solomon submatrix not invertible")
      // Sources: the known data shards, then the parity rows R; one decode row per lost shard.
      var decodeRows = [UInt8](repeating: 0, count: e * k)
      for t in 0..<e {
        for (c, column) in known.enumerated() {
          var sum: UInt8 = 0
          for (r, row) in rows.enumerated() { sum ^= gf_mul(inverse[t * e + r], matrix[row * k + column]) }
          decodeRows[t * k + c] = sum
        }
        for r in 0..<e { decodeRows[t * k + known.count + r] = inverse[t * e + r] }
      }
      var tables = Self.tables(rows: decodeRows, columns: k)
      var sources: [UnsafeMutablePointer<UInt8>?] = known.map { shards[$0] } + rows.map { shards[$0] }
      var destinations: [UnsafeMutablePointer<UInt8>?] = lostData.map { shards[$0] }
      ec_encode_data(Int32(length), Int32(k), Int32(e), &tables, &sources, &destinations)
    }
    if !lostParity.isEmpty {
      // The data is whole now: lost parity shards are encoded again.
      var rows = [UInt8]()
      for row in lostParity { rows += matrix[(row * k)..<((row + 1) * k)] }
      var tables = Self.tables(rows: rows, columns: k)
      var sources: [UnsafeMutablePointer<UInt8>?] = (0..<k).map { shards[$0] }
      var destinations: [UnsafeMutablePointer<UInt8>?] = lostParity.map { shards[$0] }
      ec_encode_data(Int32(length), Int32(k), Int32(lostParity.count), &tables, &sources, &destinations)
    }
  }

  /// Rebuilds the `erased` slots of `shards` and finds which of the `unverified` slots
  /// (shards whose checksum is unknown) are wrong, fewest first: a trial erases a set of
  /// them too, rebuilds, and holds when every parity shard it did not rebuild agrees with
  /// the result. With x slots erased, e wrong ones are located only where 2e + x ≤ m, so
  /// the answer is unique (any m + 1 − x − e remaining shards of an MDS code detect e
  /// more errors); with x = m nothing is left to check them by and they are taken as
  /// given. Trials run on the few byte positions where the parity disagrees, gathered
  /// into short shards, and only a set that holds there is tried on whole shards.
  /// Returns the wrong slots, rebuilt in `shards`, or nil — `shards` then as given but
  /// the erased slots — when no set of at most `maximumWrong` agrees.
  ///
  /// `searchBudget` bounds the search in GF(2^8) multiplications, counted across calls: each
  /// trial inverts a k × k matrix (k³), so on wide stripes a hostile table that marks every
  /// shard unverified made 50,000 trials take minutes. Once it runs out the search stops and
  /// the answer is nil, as when no set agrees — the suspects count as lost, never as right.
  package func reconstruct(
    length: Int, shards: [UnsafeMutablePointer<UInt8>], erased: [Int], unverified: [Int], maximumWrong: Int = 3,
    searchBudget: inout Int
  ) throws -> [Int]? {
    let erasedSet = Set(erased)
    let suspects = Set(unverified).subtracting(erasedSet).sorted()
    if suspects.isEmpty || erasedSet.count > parityShards {
      // More than m erased throws: there is nothing to check suspects against.
      try reconstruct(length: length, shards: shards, erased: erased)
      return []
    }
    let k = dataShards
    let total = k + parityShards
    let saved = UnsafeMutablePointer<UInt8>.allocate(capacity: suspects.count * length)
    let check = UnsafeMutablePointer<UInt8>.allocate(capacity: parityShards * length)
    defer {
      saved.deallocate()
      check.deallocate()
    }
    for (index, slot) in suspects.enumerated() { (saved + index * length).update(from: shards[slot], count: length) }
    /// Rebuilds `rebuilt` in `slots` (shards of `width` bytes) and says whether every
    /// other parity shard agrees; `check` holds the parity the data gives.
    func holds(_ slots: [UnsafeMutablePointer<UInt8>], width: Int, rebuilt: Set<Int>) throws -> Bool {
      try reconstruct(length: width, shards: slots, erased: Array(rebuilt))
      let checkRows = (0..<parityShards).map { check + $0 * width }
      encode(length: width, data: Array(slots[0..<k]), parity: checkRows)
      return (0..<parityShards).allSatisfy { row in
        rebuilt.contains(k + row) || memcmp(checkRows[row], slots[k + row], width) == 0
      }
    }
    if try holds(shards, width: length, rebuilt: erasedSet) { return [] }
    // Where the parity disagrees: the positions every trial must set right.
    var disagreeing: [Int] = []
    for position in 0..<length
    where (0..<parityShards).contains(where: { row in
      !erasedSet.contains(k + row) && check[row * length + position] != shards[k + row][position]
    }) {
      disagreeing.append(position)
    }
    let sample = stride(from: 0, to: disagreeing.count, by: max(1, disagreeing.count / 32)).map { disagreeing[$0] }
    let width = sample.count
    let gathered = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * total * width)
    defer { gathered.deallocate() }
    let original = gathered + total * width
    for slot in 0..<total {
      for (index, position) in sample.enumerated() { original[slot * width + index] = shards[slot][position] }
    }
    let trial = (0..<total).map { gathered + $0 * width }
    let trialCost = k * k * k + total * parityShards * width
    var trials = 0
    var wrong = 1
    while 2 * wrong + erasedSet.count <= parityShards && wrong <= min(maximumWrong, suspects.count) {
      var found: [Int]?
      var failure: Error?
      forEachSubset(of: suspects.count, size: wrong) { chosen in
        trials += 1
        guard trials <= 50_000, searchBudget >= trialCost else { return false }
        searchBudget -= trialCost
        let candidate = chosen.map { suspects[$0] }
        let rebuilt = erasedSet.union(candidate)
        gathered.update(from: original, count: total * width)
        do {
          guard try holds(trial, width: width, rebuilt: rebuilt) else { return true }
          // It holds where the parity disagreed; whole shards decide.
          for (index, slot) in suspects.enumerated() where !rebuilt.contains(slot) {
            shards[slot].update(from: saved + index * length, count: length)
          }
          guard try holds(shards, width: length, rebuilt: rebuilt) else { return true }
        } catch {
          failure = error
          return false
        }
        found = candidate
        return false
      }
      if let failure { throw failure }
      if let found { return found }
      wrong += 1
    }
    for (index, slot) in suspects.enumerated() { shards[slot].update(from: saved + index * length, count: length) }
    try reconstruct(length: length, shards: shards, erased: erased)
    return nil
  }
}

/// Calls `body` with every `size`-element subset of 0..<count (ascending indexes) until it
/// returns false.
private func forEachSubset(of count: Int, size: Int, _ body: ([Int]) -> Bool) {
  var chosen = Array(0..<size)
  guard size <= count else { return }
  while true {
    guard body(chosen) else { return }
    var position = size - 1
    while position >= 0 && chosen[position] == count - size + position { position -= 1 }
    if position < 0 { return }
    chosen[position] += 1
    for next in (position + 1)..<size { chosen[next] = chosen[next - 1] + 1 }
  }
}

/// Shards copied into one allocation, so ISA-L gets stable pointers without nesting a
/// closure per array.
private final class ShardBlock {
  let shardSize: Int
  let storage: UnsafeMutablePointer<UInt8>
  let pointers: [UnsafeMutablePointer<UInt8>]

  init(count: Int, shardSize: Int) {
    self.shardSize = shardSize
    storage = .allocate(capacity: max(1, count * shardSize))
    storage.initialize(repeating: 0, count: max(1, count * shardSize))
    pointers = (0..<count).map { [storage] in storage + $0 * shardSize }
  }

  convenience init(shards: [[UInt8]?], shardSize: Int) {
    self.init(count: shards.count, shardSize: shardSize)
    for (index, shard) in shards.enumerated() {
      guard let shard else { continue }
      let length = min(shard.count, shardSize)
      if length == 0 { continue }
      shard.withUnsafeBufferPointer { pointers[index].update(from: $0.baseAddress!, count: length) }
    }
  }

  func arrays() -> [[UInt8]] {
    pointers.map { Array(UnsafeBufferPointer(start: $0, count: shardSize)) }
  }

  deinit { storage.deallocate() }
}
