// swift-tools-version: 6.0
import PackageDescription

let package = Package(
  name: "Reel",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "reel", targets: ["reel"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
  ],
  targets: [
    .systemLibrary(
      name: "CZstd", pkgConfig: "libzstd",
      providers: [.apt(["libzstd-dev"])]),
    .systemLibrary(
      name: "CGcrypt", pkgConfig: "libgcrypt",
      providers: [.apt(["libgcrypt20-dev"])]),
    .systemLibrary(
      name: "CExt2fs", pkgConfig: "ext2fs",
      providers: [.apt(["libext2fs-dev"])]),
    .systemLibrary(
      name: "CBlkid", pkgConfig: "blkid",
      providers: [.apt(["libblkid-dev"])]),
    .systemLibrary(
      name: "CFuse3", pkgConfig: "fuse3",
      providers: [.apt(["libfuse3-dev"])]),
    .systemLibrary(
      name: "CIsal", pkgConfig: "libisal",
      providers: [.apt(["libisal-dev"])]),
    // libcurl, GnuTLS and libarchive are opened on first use, not at every command's start.
    .target(name: "CLazyLibrary"),
    .target(name: "CCurl", dependencies: ["CLazyLibrary"]),
    .target(name: "CGnuTLS", dependencies: ["CLazyLibrary"]),
    .target(name: "CArchive", dependencies: ["CLazyLibrary"]),
    .systemLibrary(name: "CLinux"),
    .target(name: "ReelCore", dependencies: ["CLinux"]),
    .target(name: "ReelIO", dependencies: ["ReelCore", "CLinux"]),
    // Reed–Solomon erasure coding over GF(2^8) (ISA-L): archive parity and parity cartridges.
    .target(name: "ReelParity", dependencies: ["ReelCore", "ReelIO", "CIsal"]),
    .target(name: "ReelCodec", dependencies: ["ReelCore", "ReelIO", "CGcrypt", "CZstd", "CLinux"]),
    .target(name: "ReelJournal", dependencies: ["ReelCore", "ReelIO", "ReelCodec"]),
    // The S3 client (libcurl, SigV4): objects, multipart uploads, listings; nothing of Reel's media.
    .target(name: "ReelObjectStore", dependencies: ["ReelCore", "ReelIO", "ReelCodec", "CCurl"]),
    .target(name: "ReelCapture", dependencies: ["ReelCore", "ReelIO", "ReelJournal", "CGnuTLS", "CLinux"]),

    .target(
      name: "ReelStore",
      dependencies: [
        "ReelCore", "ReelIO", "ReelCodec", "ReelJournal", "CLinux",
        .product(name: "GRDB", package: "GRDB.swift"),
      ]),
    // File systems inside a volume at any point (libblkid, libext2fs, jbd2 replay).
    .target(
      name: "ReelFiles",
      dependencies: ["ReelCore", "ReelIO", "ReelCodec", "ReelStore", "CExt2fs", "CBlkid", "CLinux"]),
    // The read-only FUSE tree of volumes, points and their files.
    .target(
      name: "ReelMount",
      dependencies: ["ReelCore", "ReelIO", "ReelStore", "ReelFiles", "CFuse3", "CLinux"]),
    // Databases inside a volume at any point: a SQLite VFS over the file reader, a throwaway
    // PostgreSQL on a private socket, and bisect over the history.
    .target(
      name: "ReelDatabases",
      dependencies: [
        "ReelCore", "ReelIO", "ReelCodec", "ReelStore", "ReelFiles", "CLinux",
        .product(name: "GRDBSQLite", package: "GRDB.swift"),
      ]),
    // Clones, promote, delete, rename and rollback: the verbs that make and remove volumes
    // from history (docs/clones.md).
    .target(
      name: "ReelClones",
      dependencies: ["ReelCore", "ReelIO", "ReelCodec", "ReelJournal", "ReelStore"]),
    .target(
      name: "ReelArchive",
      dependencies: [
        "ReelCore", "ReelIO", "ReelCodec", "ReelStore", "ReelParity", "CArchive", "CZstd",
        .product(name: "GRDB", package: "GRDB.swift"),
      ]),
    .target(
      name: "ReelMedia",
      dependencies: [
        "ReelCore", "ReelIO", "ReelCodec", "ReelStore", "ReelArchive", "ReelParity", "ReelObjectStore", "CLinux",
        .product(name: "GRDB", package: "GRDB.swift"),
      ]),
    .target(
      name: "ReelPipeline",
      dependencies: [
        "ReelCore", "ReelIO", "ReelCodec", "ReelJournal", "ReelCapture", "ReelStore", "ReelArchive", "ReelMedia",
        .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Yams", package: "Yams"),
      ]),
    .executableTarget(
      name: "reel",
      dependencies: [
        "ReelCore", "ReelIO", "ReelCodec", "ReelJournal", "ReelCapture", "ReelStore", "ReelArchive", "ReelMedia",
        "ReelPipeline", "ReelFiles", "ReelMount", "ReelDatabases", "ReelClones",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .executableTarget(
      name: "reel-bench", dependencies: ["ReelCore", "ReelIO", "ReelJournal"], path: "benchmarks/Sources/reel-bench"),
    // The mutation fuzzer of everything Reel parses from media, files and sockets
    // (Tests/ReelFuzzTests runs it briefly; benchmarks/fuzz.sh for a minute per target).
    .executableTarget(
      name: "reel-fuzz",
      dependencies: [
        "ReelCore", "ReelIO", "ReelCodec", "ReelStore", "ReelArchive", "ReelMedia", "ReelPipeline", "ReelObjectStore",
        "ReelTestSupport",
      ],
      path: "Tests/Support/reel-fuzz"),
    .testTarget(name: "ReelCoreTests", dependencies: ["ReelCore"]),
    .testTarget(name: "CLazyLibraryTests", dependencies: ["CLazyLibrary"]),
    .testTarget(name: "ReelIOTests", dependencies: ["ReelIO", "ReelCore", "ReelTestSupport"]),
    .testTarget(name: "ReelCodecTests", dependencies: ["ReelCodec", "ReelCore"]),
    .testTarget(name: "ReelParityTests", dependencies: ["ReelParity", "ReelCore", "ReelTestSupport"]),
    .executableTarget(
      name: "JournalCrashWriter", dependencies: ["ReelJournal", "ReelCore"], path: "Tests/Support/JournalCrashWriter"),
    // Uploads a file to S3 and kills itself with SIGKILL mid-upload (ObjectStoreClientTests).
    .executableTarget(
      name: "S3UploadChild", dependencies: ["ReelObjectStore", "ReelCodec", "ReelCore"], path: "Tests/Support/S3UploadChild"),
    .testTarget(
      name: "ReelJournalTests",
      dependencies: ["ReelJournal", "ReelCore", "ReelCodec", "ReelTestSupport", "JournalCrashWriter"]),
    .systemLibrary(name: "CTestSupport", path: "Tests/CTestSupport"),
    .target(
      name: "ReelTestSupport",
      dependencies: [
        "ReelStore", "ReelJournal", "ReelCore", "ReelIO", "ReelCodec", "ReelObjectStore", "CTestSupport",
        .product(name: "GRDB", package: "GRDB.swift"),
      ],
      path: "Tests/ReelTestSupport"),
    .testTarget(name: "ReelObjectStoreTests", dependencies: ["ReelObjectStore", "ReelCore", "ReelCodec"]),
    .testTarget(
      name: "ReelStoreTests",
      dependencies: [
        "ReelStore", "ReelJournal", "ReelCore", "ReelCodec", "ReelTestSupport",
        .product(name: "GRDB", package: "GRDB.swift"),
      ]),
    .testTarget(
      name: "ReelClonesTests",
      dependencies: [
        "ReelClones", "ReelStore", "ReelJournal", "ReelCore", "ReelIO", "ReelCodec", "ReelTestSupport", "reel",
        .product(name: "GRDB", package: "GRDB.swift"),
      ]),
    .testTarget(
      name: "ReelCLITests",
      dependencies: ["ReelJournal", "ReelCore", "ReelCodec", "ReelStore", "ReelTestSupport", "reel"],
      exclude: ["Fixtures"]),
    .testTarget(
      name: "ReelCaptureTests",
      dependencies: ["ReelCapture", "ReelJournal", "ReelCore", "ReelIO", "ReelCodec", "ReelStore", "ReelTestSupport", "reel"]),
    // Whole-system tests: `reel serve` with the kernel as its client (nbdfuse, loop
    // mounts, ext4), and the disaster-recovery drill. They need root and take minutes.
    .testTarget(
      name: "ReelEndToEndTests",
      dependencies: ["ReelJournal", "ReelCore", "ReelCodec", "ReelObjectStore", "ReelTestSupport", "reel", "S3UploadChild"]),
    .testTarget(
      name: "ReelFilesTests",
      dependencies: ["ReelFiles", "ReelStore", "ReelCore", "ReelIO", "ReelTestSupport", "reel"]),
    .testTarget(
      name: "ReelDatabasesTests",
      dependencies: ["ReelDatabases", "ReelFiles", "ReelStore", "ReelCore", "ReelIO", "ReelTestSupport", "reel"]),
    .testTarget(
      name: "ReelArchiveTests",
      dependencies: [
        "ReelArchive", "ReelStore", "ReelJournal", "ReelCore", "ReelIO", "ReelCodec", "ReelTestSupport", "reel",
        .product(name: "GRDB", package: "GRDB.swift"),
      ]),
    .testTarget(
      name: "ReelMediaTests",
      dependencies: [
        "ReelMedia", "ReelArchive", "ReelStore", "ReelJournal", "ReelCore", "ReelIO", "ReelCodec", "ReelObjectStore",
        "ReelTestSupport", "reel",
      ]),
    .testTarget(
      name: "ReelFuzzTests", dependencies: ["ReelCore", "ReelTestSupport", "reel-fuzz", "reel"],
      exclude: ["Fixtures"]),
    .testTarget(
      name: "ReelPipelineTests",
      dependencies: [
        "ReelPipeline", "ReelMedia", "ReelArchive", "ReelStore", "ReelJournal", "ReelCore", "ReelIO", "ReelCodec", "ReelTestSupport", "reel",
        .product(name: "GRDB", package: "GRDB.swift"),
      ]),
  ],
  swiftLanguageModes: [.v6]
)

// Each module's folder has a README.md for people: what it owns, what it must never import.
for target in package.targets where target.path == nil && [.regular, .executable].contains(target.type) {
  target.exclude.append("README.md")
}

// Tests drive these modules (in process and through the `reel` binary) over MiBs of data,
// where unoptimized Swift is about ten times slower (LazyLiveImageTests: 141 s against 14 s).
// Debug builds compile them with -O too, so the suite fits CI's time; test code stays -Onone,
// which keeps the test targets quick to compile.
for target in package.targets where target.type == .regular || target.type == .executable {
  guard !(target.path ?? "").hasPrefix("Tests") else { continue }
  target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-O"], .when(configuration: .debug))]
}
