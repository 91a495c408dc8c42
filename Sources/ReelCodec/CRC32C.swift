import CLinux
import Foundation

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of iSCSI, ext4 and
/// btrfs metadata. The SSE 4.2 instruction where the CPU has it; else slicing-by-8.
package struct CRC32C: Sendable {
  /// Eight 256-entry tables laid end to end: table k at `k * 256`.
  private static let table: [UInt32] = {
    var table = [UInt32](repeating: 0, count: 8 * 256)
    for byte in 0..<256 {
      var crc = UInt32(byte)
      for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
      table[byte] = crc
    }
    for byte in 0..<256 {
      var crc = table[byte]
      for slice in 1..<8 {
        crc = table[Int(crc & 0xFF)] ^ (crc >> 8)
        table[slice * 256 + byte] = crc
      }
    }
    return table
  }()

  /// Blocks summed as three parallel chains (see `reel_crc32c_hw_3way`): long ones for
  /// the bulk of a payload, short ones for what is left.
  private static let longBlock = 8192
  private static let shortBlock = 256

  /// Four 256-entry tables that advance a state over `count` zero bytes (built from the
  /// 32 single-bit states, as the operation is linear).
  private static func zeroShift(_ count: Int) -> [UInt32] {
    let zeros = [UInt8](repeating: 0, count: count)
    let bits = (0..<32).map { bit in
      var crc = CRC32C(softwareOnly: true)
      crc.state = 1 << UInt32(bit)
      crc.update(zeros)
      return crc.state
    }
    var table = [UInt32](repeating: 0, count: 4 * 256)
    for slot in 0..<4 {
      for byte in 0..<256 {
        var value: UInt32 = 0
        for bit in 0..<8 where byte & (1 << bit) != 0 { value ^= bits[slot * 8 + bit] }
        table[slot * 256 + byte] = value
      }
    }
    return table
  }
  private static let longShift = zeroShift(longBlock)
  private static let shortShift = zeroShift(shortBlock)

  private var state: UInt32 = 0xFFFF_FFFF
  private static let hardwareAvailable = reel_has_crc32c_instruction() != 0
  private var hardware = Self.hardwareAvailable

  package init() {}

  /// The table-driven path regardless of the CPU, so tests can hold both paths equal.
  init(softwareOnly: Bool) { hardware = !softwareOnly && Self.hardwareAvailable }

  package var value: UInt32 { state ^ 0xFFFF_FFFF }

  /// Continues from a raw register value, as jbd2 and ext4 chain their checksums: the
  /// register goes in and comes out with no inversion on either side.
  package init(register: UInt32) { state = register }

  /// The register as it stands, without the final inversion `value` applies.
  package var register: UInt32 { state }

  package mutating func update(_ buffer: UnsafeRawBufferPointer) {
    guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
    if hardware {
      let longRuns = buffer.count / (3 * Self.longBlock) * (3 * Self.longBlock)
      if longRuns > 0 {
        state = Self.longShift.withUnsafeBufferPointer {
          reel_crc32c_hw_3way(state, base, longRuns, Self.longBlock, $0.baseAddress)
        }
      }
      state = Self.shortShift.withUnsafeBufferPointer {
        reel_crc32c_hw_3way(state, base + longRuns, buffer.count - longRuns, Self.shortBlock, $0.baseAddress)
      }
      return
    }
    let count = buffer.count
    var crc = state
    Self.table.withUnsafeBufferPointer { t in
      var index = 0
      while count - index >= 8 {
        let low = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt32.self)) ^ crc
        let high = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: index + 4, as: UInt32.self))
        crc =
          t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
          ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
          ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
          ^ t[256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
        index += 8
      }
      while index < count {
        crc = t[Int((crc ^ UInt32(base.load(fromByteOffset: index, as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
        index += 1
      }
    }
    state = crc
  }

  package mutating func update(_ bytes: some ContiguousBytes) {
    bytes.withUnsafeBytes { update($0) }
  }

  package static func checksum(_ bytes: some ContiguousBytes) -> UInt32 {
    var crc = CRC32C()
    crc.update(bytes)
    return crc.value
  }

  /// The CRC-32C of two byte strings one after the other, from the CRC-32C of each and
  /// the second one's length, without their bytes: the first one's checksum advanced
  /// over as many zero bytes (a multiplication by x^(8·length) modulo the polynomial),
  /// then the second one's added. Parts checksummed on different threads so give the
  /// checksum of the whole.
  package static func combine(_ first: UInt32, _ second: UInt32, secondLength: UInt64) -> UInt32 {
    multiplyModulo(xToThe8Times(secondLength), first) ^ second
  }

  /// a·b modulo the polynomial, both as reflected bit strings (x^0 is the top bit).
  private static func multiplyModulo(_ a: UInt32, _ b: UInt32) -> UInt32 {
    var b = b
    var product: UInt32 = 0
    var bit: UInt32 = 1 << 31
    while bit != 0 {
      if a & bit != 0 { product ^= b }
      bit >>= 1
      b = b & 1 != 0 ? (b >> 1) ^ 0x82F6_3B78 : b >> 1
    }
    return product
  }

  /// x^(2^k) modulo the polynomial for k = 0…66 (3 + the 64 bits of a count).
  private static let xToThePowersOfTwo: [UInt32] = {
    var powers: [UInt32] = []
    var power: UInt32 = 1 << 30  // x^1
    for _ in 0..<67 {
      powers.append(power)
      power = multiplyModulo(power, power)
    }
    return powers
  }()

  /// x^(8·count) modulo the polynomial: the product of x^(2^k) over the set bits of 8·count.
  private static func xToThe8Times(_ count: UInt64) -> UInt32 {
    var result: UInt32 = 1 << 31  // x^0
    var rest = count
    var k = 3
    while rest != 0 {
      if rest & 1 != 0 { result = multiplyModulo(xToThePowersOfTwo[k], result) }
      rest >>= 1
      k += 1
    }
    return result
  }
}
