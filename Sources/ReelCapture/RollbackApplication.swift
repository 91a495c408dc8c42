import Foundation
import ReelCore
import ReelIO
import ReelJournal

/// Applies a rollback record to a live image: the record's extents are copied from the
/// live store as of its target seq. Capture does not know the store; `reel serve` hands in
/// the same closure it uses to rebuild an image (`CaptureConfiguration.rebuildBase`).
package enum RollbackApplication {
  /// The volume as of a seq, from the live store.
  package typealias StoreSource = (Seq) throws -> any VolumeSource

  static let copyPiece = 4 << 20

  static func storeSource(
    _ descriptor: VolumeDescriptor, _ base: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)?
  ) -> StoreSource? {
    guard let base else { return nil }
    return { seq in try base(descriptor, seq) }
  }

  static func apply(_ record: JournalRecord, to image: LiveImage, storeSource: StoreSource?) throws {
    let size = image.size
    guard let payload = record.rollback else {
      throw ReelError(.corrupt, "journal record seq \(record.seq) is a rollback whose payload does not decode")
    }
    guard let storeSource else {
      throw ReelError(
        .notFound,
        "journal record seq \(record.seq) rolls the volume back to seq \(payload.targetSeq); the live image needs the live store to apply it",
        remedy: "serve the volume with `reel serve`, which reads the rolled-back extents from the live store")
    }
    guard payload.extents.last.map({ $0.end <= size }) ?? true else {
      throw ReelError(
        .corrupt, "journal record seq \(record.seq) rolls back bytes past the volume's \(size) bytes",
        remedy: "check the journal with `reel journal verify`; the volume descriptor may not belong to it")
    }
    guard !payload.extents.isEmpty else { return }
    let source = try storeSource(payload.targetSeq)
    try copy(payload.extents, from: source, to: image)
  }

  /// Writes the extents' bytes from `source` into `image`; all-zero pieces become holes.
  /// Through the image's own writes, so a lazy image counts the regions as filled.
  static func copy(_ extents: [RollbackPayload.Extent], from source: any VolumeSource, to image: LiveImage) throws {
    for extent in extents {
      var offset = extent.offset
      while offset < extent.end {
        let length = Int(min(UInt64(copyPiece), extent.end - offset))
        let bytes = try source.read(offset: offset, length: length)
        if bytes.allSatisfy({ $0 == 0 }) {
          try image.zero(offset: offset, length: UInt64(length))
        } else {
          try bytes.withUnsafeBytes { try image.write($0, at: offset) }
        }
        offset += UInt64(length)
      }
    }
  }
}

extension RollbackApplication {
  /// Plans a rollback of a volume to a point (as the user wrote it), with the store caught
  /// up through the given seq (the journal's last).
  package typealias Planner =
    @Sendable (_ volume: VolumeDescriptor, _ point: String, _ through: Seq) throws -> RollbackPlan
}

/// What a rollback did.
package struct RollbackOutcome: Sendable, Equatable {
  /// The rollback record's seq and time.
  package var seq: Seq
  package var time: Timestamp
  package var targetSeq: Seq
  package var extents: Int
  package var bytes: UInt64
  /// Client connections that were cut first (`--disconnect`).
  package var disconnected: Int

  package init(seq: Seq, time: Timestamp, targetSeq: Seq, extents: Int, bytes: UInt64, disconnected: Int) {
    self.seq = seq
    self.time = time
    self.targetSeq = targetSeq
    self.extents = extents
    self.bytes = bytes
    self.disconnected = disconnected
  }
}

/// Rollbacks of a served volume, asked for on its control socket. The volume is made quiet
/// first: new connections are refused for the duration, existing ones refuse the request
/// unless it says to disconnect them (the journal is synced, their streams cut, and the
/// request waits until they have left). Then every pending record is applied to the live
/// image, the store is caught up and the rollback planned, the record is appended and
/// synced, its extents are copied into the live image from the store as of the target,
/// and the image is checkpointed. The copy runs under the checkpoint lock, so no
/// checkpoint can claim the record applied before its bytes are in the image; a crash
/// anywhere leaves the record absent (not started) or in the journal, where the next
/// start replays it (done).
final class RollbackService: Sendable {
  static let requestPrefix = "ROLLBACK "
  /// How long connections cut by `--disconnect` have to finish their requests and leave.
  static let disconnectTimeout: Duration = .seconds(30)

  let volume: ServedVolume
  let slots: ExportSlots
  let plan: RollbackApplication.Planner?
  let storeSource: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)?
  private let oneAtATime = NSLock()

  init(
    volume: ServedVolume, slots: ExportSlots, plan: RollbackApplication.Planner?,
    storeSource: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)?
  ) {
    self.volume = volume
    self.slots = slots
    self.plan = plan
    self.storeSource = storeSource
  }

  static func requestLine(point: String, disconnect: Bool) -> String {
    "\(requestPrefix)\(disconnect ? 1 : 0) \(point)\n"
  }

  static func okLine(_ outcome: RollbackOutcome) -> String {
    "OK \(outcome.seq) \(outcome.time.rfc3339) \(outcome.targetSeq) \(outcome.extents) \(outcome.bytes) \(outcome.disconnected)\n"
  }

  static func parseReply(_ line: String) throws -> RollbackOutcome {
    if line.hasPrefix("OK ") {
      let fields = line.dropFirst(3).split(separator: " ").map(String.init)
      if fields.count == 6, let seq = Seq(fields[0]), let time = Timestamp(rfc3339: fields[1]),
        let target = Seq(fields[2]), let extents = Int(fields[3]), let bytes = UInt64(fields[4]),
        let cut = Int(fields[5])
      {
        return RollbackOutcome(
          seq: seq, time: time, targetSeq: target, extents: extents, bytes: bytes, disconnected: cut)
      }
      throw ReelError(.protocolViolation, "unexpected reply from the capture server's control socket: \(line)")
    }
    _ = try ControlProtocol.parseReply(line)  // throws the server's error
    throw ReelError(.protocolViolation, "unexpected reply from the capture server's control socket: \(line)")
  }

  func perform(_ line: String, log: @Sendable (String) -> Void) throws -> String {
    let request = line.dropFirst(Self.requestPrefix.count)
    guard let space = request.firstIndex(of: " "), ["0", "1"].contains(request[..<space]) else {
      throw ReelError(.usage, "a rollback request reads `ROLLBACK <0|1> <point>`", remedy: "see docs/capture.md")
    }
    let disconnect = request[..<space] == "1"
    let point = String(request[request.index(after: space)...])
    guard let plan, let storeSource else {
      throw ReelError(
        .incompatible, "this server cannot roll back volume \(volume.name): it was started without the live store",
        remedy: "stop the server and run `reel rollback` offline, or serve with `reel serve`")
    }
    return Self.okLine(
      try oneAtATime.withLock {
        try rollback(to: point, disconnect: disconnect, plan: plan, storeSource: storeSource, log: log)
      })
  }

  private func rollback(
    to point: String, disconnect: Bool, plan: RollbackApplication.Planner,
    storeSource: @Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource, log: @Sendable (String) -> Void
  ) throws -> RollbackOutcome {
    let name = volume.name
    let connected = slots.close(name)
    var reopen = true
    defer { if reopen { slots.open(name) } }
    var disconnected = 0
    if connected > 0 {
      guard disconnect else {
        throw ReelError(
          .usage,
          "volume \(name) has \(connected) client connection\(connected == 1 ? "" : "s") open; a rollback would change the data under \(connected == 1 ? "it" : "them")",
          remedy:
            "unmount and disconnect the clients first, or pass --disconnect to flush the journal and close their connections"
        )
      }
      try volume.journal.sync()
      guard let cut = slots.disconnectAll(name, timeout: Self.disconnectTimeout) else {
        throw ReelError(
          .io,
          "volume \(name): clients did not leave within \(ServerLimits.describe(Self.disconnectTimeout)) of being disconnected; nothing was rolled back",
          remedy: "try again; check the server's log for the connections")
      }
      disconnected = cut
      log("volume \(name): disconnected \(cut) client connection\(cut == 1 ? "" : "s") for a rollback")
    }
    try volume.applier.drain()
    try volume.journal.sync()
    let planned = try plan(volume.descriptor, point, volume.journal.lastAppendedSeq)
    let source = try storeSource(volume.descriptor, planned.payload.targetSeq)
    let appended: AppendedRecord = try volume.checkpointing.withLock {
      let appended = try volume.record(.rollback(planned.payload))
      try volume.journal.sync()
      do {
        try RollbackApplication.copy(planned.payload.extents, from: source, to: volume.image)
      } catch {
        // The record is durable but the image has only part of it: no client may read it
        // until a restart replays the record.
        reopen = false
        throw ReelError(
          .io,
          "volume \(name): the rollback is journaled at seq \(appended.seq) but the live image could not take it (\(error)); new connections are refused",
          remedy: "restart `reel serve`: it replays the rollback into the live image")
      }
      return appended
    }
    try volume.checkpoint()
    log(
      "volume \(name): rolled back to \(planned.target) (seq \(planned.payload.targetSeq)) at seq \(appended.seq): \(planned.payload.extents.count) extents, \(planned.payload.coveredBytes) bytes"
    )
    return RollbackOutcome(
      seq: appended.seq, time: appended.time, targetSeq: planned.payload.targetSeq,
      extents: planned.payload.extents.count, bytes: planned.payload.coveredBytes, disconnected: disconnected)
  }
}

/// The client side of `ROLLBACK`, for `reel rollback`.
package enum RollbackRequest {
  /// Asks the `reel serve` that has `volume` to roll it back; nil when no server has it.
  package static func throughServer(
    layout: StoreLayout, volume: String, point: String, disconnect: Bool
  ) throws -> RollbackOutcome? {
    let controlPath = layout.volumeDirectory(volume) + "/" + ControlProtocol.socketName
    guard
      let line = try ControlProtocol.ask(
        RollbackService.requestLine(point: point, disconnect: disconnect), at: controlPath,
        unanswered: "check the server's log; `reel timeline \(volume)` shows whether the rollback was recorded",
        interrupted: "during the rollback; `reel timeline \(volume)` shows whether it was recorded")
    else { return nil }
    return try RollbackService.parseReply(line)
  }
}
