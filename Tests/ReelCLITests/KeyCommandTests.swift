import Foundation
import ReelTestSupport
import Testing

/// `reel key` run as a user would: the real binary, the passphrase in the environment.
@Suite struct KeyCommandTests {
  static let passphrase = "tape in the vault 42"

  /// Cheap Argon2id (the documented test knob) and no key file or passphrase from the
  /// caller's environment.
  static func environment(passphrase: String? = passphrase) -> [String: String?] {
    ["REEL_PASSPHRASE": passphrase, "REEL_KDF_MEMORY_KIB": "64", "REEL_KEY": nil]
  }

  func key(
    _ sandbox: ReelSandbox, _ arguments: String..., passphrase: String? = passphrase, input: String? = nil
  ) throws -> CommandResult {
    try sandbox.run(
      reelExecutable, ["key"] + arguments, environment: Self.environment(passphrase: passphrase),
      input: input.map { Array($0.utf8) })
  }

  func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

  @Test func createShowPaperAndTypeBackIn() throws {
    let sandbox = ReelSandbox()
    let original = sandbox.root + "/office.key"
    let created = try key(sandbox, "create", "--out", original, "--label", "office backups")
    #expect(created.status == 0, "\(created.stderr)")
    let fingerprint = try #require(created.stdout.firstMatch(of: /fingerprint: ([0-9a-f-]{39})/)?.1).description
    #expect(created.stderr.contains("REEL_KDF_MEMORY_KIB=64"), "the weakened cost is announced")
    #expect(!(created.stdout + created.stderr).contains(Self.passphrase))
    var info = stat()
    #expect(stat(original, &info) == 0 && info.st_mode & 0o077 == 0)

    let shown = try key(sandbox, "show", original, passphrase: nil)
    #expect(shown.status == 0)
    for text in [fingerprint, "office backups", "argon2id", "64 KiB"] { #expect(shown.stdout.contains(text)) }
    let json = try sandbox.json(try key(sandbox, "show", original, "--json", passphrase: nil).stdout)
    #expect(json["fingerprint"] as? String == fingerprint)
    #expect((json["kdf"] as? [String: Any])?["memory_kib"] as? Int == 64)
    let viaEnvironment = try sandbox.run(
      reelExecutable, ["key", "show"], environment: ["REEL_KEY": original, "REEL_PASSPHRASE": nil])
    #expect(viaEnvironment.status == 0 && viaEnvironment.stdout.contains(fingerprint))

    let paper = try key(sandbox, "paper", original)
    #expect(paper.status == 0, "\(paper.stderr)")
    #expect(paper.stdout.contains("fingerprint: \(fingerprint)"))
    let lines = paper.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
      .filter { $0.wholeMatch(of: /[1-4]: [0-9A-Z]{4} [0-9A-Z]{4} [0-9A-Z]{4} [0-9A-Z]{4}/) != nil }
    #expect(lines.count == 4)

    // Typed back in from standard input, sloppily, with a new passphrase.
    let sloppy =
      (lines.map { $0.lowercased().replacingOccurrences(of: " ", with: "-") }
      + ["fingerprint: \(fingerprint)"]).joined(separator: "\n")
    let restored = sandbox.root + "/restored.key"
    let typed = try key(sandbox, "create", "--out", restored, "--from-paper", passphrase: "new words", input: sloppy)
    #expect(typed.status == 0, "\(typed.stderr)")
    #expect(typed.stdout.contains(fingerprint))
    let restoredShown = try sandbox.json(try key(sandbox, "show", restored, "--json").stdout)
    #expect(restoredShown["fingerprint"] as? String == fingerprint)

    // From the printed page saved to a file; the label comes along from the page.
    let page = sandbox.root + "/page.txt"
    #expect(FileManager.default.createFile(atPath: page, contents: Data(paper.stdout.utf8)))
    let fromFile = sandbox.root + "/from-file.key"
    #expect(try key(sandbox, "create", "--out", fromFile, "--paper-file", page).status == 0)
    let fromFileShown = try sandbox.json(try key(sandbox, "show", fromFile, "--json").stdout)
    #expect(fromFileShown["fingerprint"] as? String == fingerprint)
    #expect(fromFileShown["label"] as? String == "office backups")

    // The same master key under the new passphrase prints the same lines.
    let again = try key(sandbox, "paper", restored, passphrase: "new words")
    #expect(again.status == 0)
    for line in lines { #expect(again.stdout.contains(line)) }
  }

  @Test func aWrongPassphraseExits77AndChangesNothing() throws {
    let sandbox = ReelSandbox()
    let path = sandbox.root + "/k.key"
    #expect(try key(sandbox, "create", "--out", path).status == 0)
    let before = contents(path)
    let wrong = try key(sandbox, "paper", path, passphrase: "tape in the vault 43")
    #expect(wrong.status == 77)
    #expect(wrong.stderr.contains("\(path): the passphrase does not open this key file"))
    #expect(wrong.stdout.isEmpty, "nothing of the key is printed")
    #expect(contents(path) == before)
  }

  @Test func existingFilesAreNeverOverwritten() throws {
    let sandbox = ReelSandbox()
    let path = sandbox.root + "/k.key"
    #expect(try key(sandbox, "create", "--out", path).status == 0)
    let before = contents(path)
    let again = try key(sandbox, "create", "--out", path)
    #expect(again.status == 73)
    #expect(again.stderr.contains("\(path) already exists"))
    let fromPaper = try key(sandbox, "create", "--out", path, "--from-paper", input: "")
    #expect(fromPaper.status == 73)
    #expect(contents(path) == before)
  }

  @Test func damagedKeyFilesAreReportedAsDamage() throws {
    let sandbox = ReelSandbox()
    let path = sandbox.root + "/k.key"
    #expect(try key(sandbox, "create", "--out", path).status == 0)
    let good = try #require(contents(path))
    let text = String(decoding: good, as: UTF8.self)
    let wrapped = try #require(text.firstMatch(of: /"wrappedKey" : "([0-9a-f]{80})"/)?.1)
    // One bit of the wrapped key flipped: its last hex digit changes by 1.
    let last = wrapped.last!.hexDigitValue!
    let flipped = wrapped.dropLast() + String(last ^ 1, radix: 16)
    let damaged: [(String, Data, String)] = [
      ("truncated", good.prefix(good.count / 3), "damaged or not a Reel key file"),
      ("bit-flipped", Data(text.replacingOccurrences(of: String(wrapped), with: String(flipped)).utf8), "checksum"),
      (
        "future", Data(text.replacingOccurrences(of: "\"formatVersion\" : 1", with: "\"formatVersion\" : 9").utf8),
        "format version 9"
      ),
    ]
    for (name, bytes, phrase) in damaged {
      #expect(FileManager.default.createFile(atPath: path, contents: bytes))
      for command in ["show", "paper"] {
        let run = try key(sandbox, command, path)
        #expect(run.status == 65, "\(name) \(command): \(run.stderr)")
        #expect(run.stderr.contains("reel: \(path): "), "\(name) \(command)")
        #expect(run.stderr.contains(phrase), "\(name) \(command): \(run.stderr)")
        #expect(run.stdout.isEmpty)
      }
    }
    let missing = try key(sandbox, "show", sandbox.root + "/absent.key")
    #expect(missing.status == 66 && missing.stderr.contains("absent.key: no such key file"))
  }

  @Test func aMistypedPaperLineIsNamedAndNothingIsWritten() throws {
    let sandbox = ReelSandbox()
    let path = sandbox.root + "/k.key"
    #expect(try key(sandbox, "create", "--out", path).status == 0)
    let page = try key(sandbox, "paper", path).stdout
    let line3 = try #require(page.firstMatch(of: /3: ([0-9A-Z ]{19})/)?.1)
    let wrongCharacter: Character = line3.first == "7" ? "8" : "7"
    let mistyped = page.replacingOccurrences(of: "3: " + line3, with: "3: \(wrongCharacter)" + line3.dropFirst())
    let out = sandbox.root + "/typed.key"
    let typed = try key(sandbox, "create", "--out", out, "--from-paper", input: mistyped)
    #expect(typed.status == 64)
    #expect(typed.stderr.contains("line 3 does not match its check"))
    #expect(!FileManager.default.fileExists(atPath: out))
  }

  /// With no REEL_PASSPHRASE and no terminal (setsid leaves none), the command says how to
  /// give a passphrase instead of waiting or failing obscurely.
  @Test func withoutPassphraseOrTerminalTheErrorSaysWhatToSet() throws {
    let sandbox = ReelSandbox()
    let path = sandbox.root + "/k.key"
    #expect(try key(sandbox, "create", "--out", path).status == 0)
    let detached = try sandbox.run(
      "/usr/bin/setsid", ["--wait", reelExecutable, "key", "paper", path],
      environment: Self.environment(passphrase: nil))
    #expect(detached.status == 64)
    #expect(detached.stderr.contains("REEL_PASSPHRASE is not set and there is no terminal"))
    let empty = try key(sandbox, "create", "--out", sandbox.root + "/empty.key", passphrase: "")
    #expect(empty.status == 64 && empty.stderr.contains("REEL_PASSPHRASE is set but empty"))
    #expect(!FileManager.default.fileExists(atPath: sandbox.root + "/empty.key"))
  }
}
