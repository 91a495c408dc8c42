import Foundation
import GRDBSQLite
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

// The SQLite VFS "reel-at-point": every pointer SQLite hands a VFS is handled in this file.
//
// A database opened through it is registered first (`SQLiteVFS.register`) under a name of
// its own; SQLite then asks for that name, the name + "-wal" and the name + "-journal", and
// each is a `SQLiteOverlayFile` over the file system at the point. Files without a name
// (statement journals, sorter spill files, temporary tables) go to the default VFS, which
// makes them in the system's temporary folder already unlinked. Any other name is refused:
// `VACUUM INTO`, a super-journal or an attached file never reach the host.

/// The files of one database opened at a point, and the WAL index SQLite keeps for it.
final class SQLiteDatabaseFiles: @unchecked Sendable {
  enum Role { case main, wal, journal }

  /// The name SQLite opens: `/reel-at-point/N/` + the database's path.
  let name: String
  let main: SQLiteOverlayFile
  let wal: SQLiteOverlayFile
  let journal: SQLiteOverlayFile
  /// Every field below, and the overlay files, only under this lock.
  fileprivate let lock = NSLock()
  /// The WAL index (what `-shm` holds on a host): 32 KiB regions in process memory.
  fileprivate var sharedMemory: [UnsafeMutableRawPointer] = []
  /// Set before closing: the exclusive lock SQLite takes to checkpoint and delete the WAL
  /// on close is refused, so closing writes nothing (the overlay would take it anyway).
  var refuseExclusiveLock = false
  /// Called before each read from the file system: the connection's deadline check (a
  /// `count(*)` walks the whole table in one VM step, so the progress handler alone is not
  /// enough).
  var beforeRead: (@Sendable () -> Void)?
  /// The last error the file system gave (SQLite only sees SQLITE_IOERR).
  var readError: (any Error)?

  init(name: String, main: SQLiteOverlayFile, wal: SQLiteOverlayFile, journal: SQLiteOverlayFile) {
    self.name = name
    self.main = main
    self.wal = wal
    self.journal = journal
  }

  deinit {
    for region in sharedMemory { free(region) }
  }

  func file(_ role: Role) -> SQLiteOverlayFile {
    switch role {
    case .main: main
    case .wal: wal
    case .journal: journal
    }
  }

  func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
    lock.lock()
    defer { lock.unlock() }
    return try body()
  }
}

/// What one `sqlite3_file` SQLite opened through the VFS points at.
private final class SQLiteOpenFile {
  let database: SQLiteDatabaseFiles
  let role: SQLiteDatabaseFiles.Role
  var lockLevel: Int32 = SQLITE_LOCK_NONE

  init(database: SQLiteDatabaseFiles, role: SQLiteDatabaseFiles.Role) {
    self.database = database
    self.role = role
  }
}

enum SQLiteVFS {
  static let name = "reel-at-point"

  /// Makes `database` openable by its name until `unregister`.
  static func register(_ database: SQLiteDatabaseFiles) {
    _ = installed
    databases.withLock { $0[database.name] = database }
  }

  static func unregister(_ database: SQLiteDatabaseFiles) {
    _ = databases.withLock { $0.removeValue(forKey: database.name) }
  }

  /// A fresh name for a database: unique within the process.
  static func uniqueName(for path: String) -> String {
    let number = counter.withLock { value -> Int in
      value += 1
      return value
    }
    return "/\(name)/\(number)/" + path.drop { $0 == "/" }
  }

  private static let databases = Locked<[String: SQLiteDatabaseFiles]>([:])
  private static let counter = Locked(0)

  private static let installed: Bool = {
    let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
    vfs.initialize(to: makeVFS())
    return sqlite3_vfs_register(vfs, 0) == SQLITE_OK
  }()

  fileprivate static func database(named name: String) -> (SQLiteDatabaseFiles, SQLiteDatabaseFiles.Role)? {
    databases.withLock { registered in
      if let database = registered[name] { return (database, .main) }
      for (suffix, role) in [("-wal", SQLiteDatabaseFiles.Role.wal), ("-journal", .journal)]
      where name.hasSuffix(suffix) {
        if let database = registered[String(name.dropLast(suffix.count))] { return (database, role) }
      }
      return nil
    }
  }
}

// SQLite's extended result codes, which Swift does not import (they are expressions).
private let ioErrorRead = SQLITE_IOERR | (1 << 8)
private let ioErrorShortRead = SQLITE_IOERR | (2 << 8)
private let ioErrorWrite = SQLITE_IOERR | (3 << 8)
private let ioErrorDelete = SQLITE_IOERR | (10 << 8)

/// The system's own VFS: temporary files and the clock, randomness and sleep.
private nonisolated(unsafe) let defaultVFS: UnsafeMutablePointer<sqlite3_vfs> = sqlite3_vfs_find(nil)!

/// Where our object sits in the `sqlite3_file` SQLite allocated (after its methods pointer).
private let objectOffset = MemoryLayout<sqlite3_file>.stride

private func openFile(_ file: UnsafeMutablePointer<sqlite3_file>?) -> SQLiteOpenFile {
  let slot = UnsafeMutableRawPointer(file!).advanced(by: objectOffset)
  return Unmanaged<SQLiteOpenFile>.fromOpaque(slot.load(as: UnsafeRawPointer.self)).takeUnretainedValue()
}

private func string(_ name: UnsafePointer<CChar>?) -> String? {
  name.map { String(cString: $0) }
}

private func makeVFS() -> sqlite3_vfs {
  var vfs = sqlite3_vfs()
  vfs.iVersion = 2
  vfs.szOsFile = max(defaultVFS.pointee.szOsFile, Int32(objectOffset + MemoryLayout<UnsafeRawPointer>.stride))
  vfs.mxPathname = max(defaultVFS.pointee.mxPathname, 4096)
  vfs.zName = UnsafePointer(strdup(SQLiteVFS.name))
  vfs.xOpen = { _, name, file, flags, outFlags in
    guard let name = string(name) else {
      // Nameless files are SQLite's own scratch space, never the database's.
      return defaultVFS.pointee.xOpen(defaultVFS, nil, file, flags, outFlags)
    }
    guard let (database, role) = SQLiteVFS.database(named: name) else { return SQLITE_CANTOPEN }
    let opened = database.withLock { () -> Bool in
      let overlay = database.file(role)
      if !overlay.exists {
        guard flags & SQLITE_OPEN_CREATE != 0 else { return false }
        overlay.create()
      }
      return true
    }
    guard opened else { return SQLITE_CANTOPEN }
    let object = Unmanaged.passRetained(SQLiteOpenFile(database: database, role: role)).toOpaque()
    UnsafeMutableRawPointer(file!).advanced(by: objectOffset).storeBytes(
      of: UnsafeRawPointer(object), as: UnsafeRawPointer.self)
    file!.pointee.pMethods = UnsafePointer(ioMethods)
    outFlags?.pointee = flags
    return SQLITE_OK
  }
  vfs.xDelete = { _, name, _ in
    guard let name = string(name), let (database, role) = SQLiteVFS.database(named: name) else {
      return ioErrorDelete
    }
    database.withLock { database.file(role).delete() }
    return SQLITE_OK
  }
  vfs.xAccess = { _, name, _, result in
    guard let name = string(name), let (database, role) = SQLiteVFS.database(named: name) else {
      result?.pointee = 0
      return SQLITE_OK
    }
    result?.pointee = database.withLock { database.file(role).exists } ? 1 : 0
    return SQLITE_OK
  }
  vfs.xFullPathname = { _, name, size, output in
    guard let name, let output, strlen(name) < Int(size) else { return SQLITE_CANTOPEN }
    strcpy(output, name)
    return SQLITE_OK
  }
  vfs.xDlOpen = { _, name in defaultVFS.pointee.xDlOpen(defaultVFS, name) }
  vfs.xDlError = { _, size, message in defaultVFS.pointee.xDlError(defaultVFS, size, message) }
  vfs.xDlSym = { _, handle, symbol in defaultVFS.pointee.xDlSym(defaultVFS, handle, symbol) }
  vfs.xDlClose = { _, handle in defaultVFS.pointee.xDlClose(defaultVFS, handle) }
  vfs.xRandomness = { _, size, output in defaultVFS.pointee.xRandomness(defaultVFS, size, output) }
  vfs.xSleep = { _, microseconds in defaultVFS.pointee.xSleep(defaultVFS, microseconds) }
  vfs.xCurrentTime = { _, time in defaultVFS.pointee.xCurrentTime(defaultVFS, time) }
  vfs.xGetLastError = { _, size, message in defaultVFS.pointee.xGetLastError(defaultVFS, size, message) }
  vfs.xCurrentTimeInt64 = { _, time in defaultVFS.pointee.xCurrentTimeInt64(defaultVFS, time) }
  return vfs
}

private nonisolated(unsafe) let ioMethods: UnsafeMutablePointer<sqlite3_io_methods> = {
  var methods = sqlite3_io_methods()
  methods.iVersion = 2
  methods.xClose = { file in
    let slot = UnsafeMutableRawPointer(file!).advanced(by: objectOffset)
    Unmanaged<SQLiteOpenFile>.fromOpaque(slot.load(as: UnsafeRawPointer.self)).release()
    return SQLITE_OK
  }
  methods.xRead = { file, buffer, count, offset in
    let open = openFile(file)
    let database = open.database
    database.beforeRead?()
    do {
      let bytes = try database.withLock { try database.file(open.role).read(offset: UInt64(offset), count: Int(count)) }
      let target = UnsafeMutableRawBufferPointer(start: buffer, count: Int(count))
      target.copyBytes(from: bytes)
      guard bytes.count == Int(count) else {
        // SQLite relies on the rest being zeros.
        target[bytes.count...].initializeMemory(as: UInt8.self, repeating: 0)
        return ioErrorShortRead
      }
      return SQLITE_OK
    } catch {
      database.withLock { database.readError = error }
      return ioErrorRead
    }
  }
  methods.xWrite = { file, buffer, count, offset in
    let open = openFile(file)
    do {
      try open.database.withLock {
        try open.database.file(open.role).write(
          UnsafeRawBufferPointer(start: buffer, count: Int(count)), offset: UInt64(offset))
      }
      return SQLITE_OK
    } catch {
      open.database.withLock { open.database.readError = error }
      return ioErrorWrite
    }
  }
  methods.xTruncate = { file, size in
    let open = openFile(file)
    open.database.withLock { open.database.file(open.role).truncate(to: UInt64(max(0, size))) }
    return SQLITE_OK
  }
  methods.xSync = { _, _ in SQLITE_OK }
  methods.xFileSize = { file, size in
    let open = openFile(file)
    size?.pointee = sqlite3_int64(open.database.withLock { open.database.file(open.role).size })
    return SQLITE_OK
  }
  // One connection per database, so locks only need to say yes, except the exclusive lock
  // of a closing connection (see `refuseExclusiveLock`).
  methods.xLock = { file, level in
    let open = openFile(file)
    if level == SQLITE_LOCK_EXCLUSIVE && open.database.withLock({ open.database.refuseExclusiveLock }) {
      return SQLITE_BUSY
    }
    open.lockLevel = max(open.lockLevel, level)
    return SQLITE_OK
  }
  methods.xUnlock = { file, level in
    openFile(file).lockLevel = level
    return SQLITE_OK
  }
  methods.xCheckReservedLock = { _, result in
    // Nobody else holds the database: a journal found is hot, as after a crash.
    result?.pointee = 0
    return SQLITE_OK
  }
  methods.xFileControl = { _, _, _ in SQLITE_NOTFOUND }
  methods.xSectorSize = { _ in 4096 }
  methods.xDeviceCharacteristics = { _ in SQLITE_IOCAP_POWERSAFE_OVERWRITE }
  methods.xShmMap = { file, region, regionSize, extend, pointer in
    let database = openFile(file).database
    return database.withLock {
      let index = Int(region)
      while database.sharedMemory.count <= index {
        guard extend != 0 else {
          pointer?.pointee = nil
          return SQLITE_OK
        }
        guard let memory = calloc(1, Int(regionSize)) else { return SQLITE_NOMEM }
        database.sharedMemory.append(memory)
      }
      pointer?.pointee = UnsafeMutableRawPointer(database.sharedMemory[index])
      return SQLITE_OK
    }
  }
  // The WAL index is this connection's alone: no other process or connection maps it.
  methods.xShmLock = { _, _, _, _ in SQLITE_OK }
  methods.xShmBarrier = { file in
    // Taking and releasing a lock is a full memory barrier.
    openFile(file).database.withLock {}
  }
  methods.xShmUnmap = { file, _ in
    let database = openFile(file).database
    database.withLock {
      for region in database.sharedMemory { free(region) }
      database.sharedMemory = []
    }
    return SQLITE_OK
  }
  let pointer = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
  pointer.initialize(to: methods)
  return pointer
}()
