import ArgumentParser
import Foundation
import ReelCodec
import ReelCore

struct KeyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "key",
    abstract: "Create and show master keys (passphrase-protected key files, paper copies).",
    discussion: """
      A master key is 32 random bytes kept in a key file, wrapped with a key derived from a \
      passphrase (Argon2id). The passphrase comes from $REEL_PASSPHRASE, else a prompt on \
      the terminal. A command's key file defaults to $REEL_KEY. Format: docs/key-format.md.
      """,
    subcommands: [Create.self, Show.self, Paper.self])

  struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Make a new master key in a new key file, or type one back in from its paper copy.",
      discussion: """
        Asks for a new passphrase twice (or takes $REEL_PASSPHRASE). Never overwrites a file.

        $REEL_KDF_MEMORY_KIB lowers Argon2id's memory (default 65536 KiB) for tests and \
        small machines; it weakens the passphrase's protection.
        """)

    @Option(help: "The key file to write; it must not exist yet.") var out: String
    @Option(help: "A note kept in the clear in the key file, e.g. what the key protects.") var label: String?
    @Flag(help: "Type in the key from a paper copy (`reel key paper`) instead of making a new one.")
    var fromPaper = false
    @Option(help: "Read the paper copy's text from this file instead of standard input (implies --from-paper).")
    var paperFile: String?

    func run() throws {
      try KeyFile.checkNewPath(out)
      let parameters = try keyDerivationParameters()
      if fromPaper || paperFile != nil {
        let reading = try PaperKey.read(try paperText())
        let passphrase = try Passphrase.obtain(for: out, confirm: true)
        try KeyFile.create(
          at: out, key: reading.key, passphrase: passphrase, label: label ?? reading.label ?? "",
          parameters: parameters)
        say("Created key file \(out) from the paper copy")
        say("  fingerprint: \(reading.key.fingerprint) (the same as on the paper)")
      } else {
        let passphrase = try Passphrase.obtain(for: out, confirm: true)
        let key = try KeyFile.create(at: out, passphrase: passphrase, label: label ?? "", parameters: parameters)
        say("Created key file \(out)")
        say("  fingerprint: \(key.fingerprint)")
        say("Without this file and its passphrase, or a paper copy, archives sealed with the key cannot be read.")
        say("Print a paper copy now with `reel key paper \(out)` and keep it apart from the archives.")
      }
    }

    /// Argon2id's parameters for the new file; `REEL_KDF_MEMORY_KIB` only lowers the cost
    /// for tests and small machines, and says so.
    private func keyDerivationParameters() throws -> Argon2id.Parameters {
      var parameters = Argon2id.Parameters.standard
      guard let text = ProcessInfo.processInfo.environment["REEL_KDF_MEMORY_KIB"] else { return parameters }
      guard let memory = Int(text) else {
        throw ReelError(.usage, "REEL_KDF_MEMORY_KIB=\(text) is not a whole number of KiB")
      }
      parameters.memoryKiB = memory
      if let problem = KeyFile.parametersProblem(parameters) {
        throw ReelError(.usage, "REEL_KDF_MEMORY_KIB=\(text): \(problem)")
      }
      if memory < Argon2id.Parameters.standard.memoryKiB {
        FileHandle.standardError.write(
          Data("reel: REEL_KDF_MEMORY_KIB=\(memory) makes this passphrase cheaper to guess (tests only)\n".utf8))
      }
      return parameters
    }

    /// The paper copy's text: `--paper-file`, else standard input, asked for line by line
    /// when it is a terminal so a mistyped line can be typed again at once.
    private func paperText() throws -> String {
      if let paperFile {
        guard let data = FileManager.default.contents(atPath: paperFile) else {
          throw ReelError(.notFound, "\(paperFile): cannot read the paper copy's text")
        }
        return String(decoding: data, as: UTF8.self)
      }
      guard isatty(STDIN_FILENO) == 1 else {
        return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
      }
      let prompt = { (text: String) in FileHandle.standardError.write(Data(text.utf8)) }
      prompt("Type the paper copy's \(PaperKey.lineCount) numbered lines, then its fingerprint line.\n")
      var text = ""
      for number in 1...PaperKey.lineCount {
        while true {
          prompt("line \(number): ")
          guard let typed = readLine() else { throw ReelError(.usage, "the paper key's line \(number) was not typed") }
          do {
            _ = try PaperKey.decodeLine(typed, number: number)
            text += "\(number): \(typed)\n"
            break
          } catch let error as ReelError {
            prompt("\(error.message); type line \(number) again\n")
          }
        }
      }
      prompt("fingerprint: ")
      guard let fingerprint = readLine() else { throw ReelError(.usage, "the fingerprint was not typed") }
      return text + "fingerprint: \(fingerprint)\n"
    }
  }

  struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "What a key file says without its passphrase: fingerprint, label, creation, Argon2id parameters.",
      discussion: "Also checks the file's checksum; exit status 65 when it is damaged.")

    @Argument(help: "The key file (default: $REEL_KEY).") var file: String?
    @Flag(help: "JSON output.") var json = false

    func run() throws {
      let keyFile = try KeyFile.read(at: keyFilePath(file))
      let parameters = keyFile.parameters
      if json {
        say(jsonText(KeyFileJSON(keyFile)))
      } else {
        say("key file:    \(keyFile.path)")
        say("format:      \(KeyFile.formatName) version \(KeyFile.currentVersion)")
        say("fingerprint: \(keyFile.fingerprint)")
        say("label:       \(keyFile.label)")
        say("created:     \(keyFile.created)")
        say(
          "passphrase:  \(KeyFile.keyDerivationName) (\(KeyFile.describe(parameters))), key wrapped with \(KeyFile.wrapName)"
        )
      }
    }
  }

  struct Paper: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print a paper copy of the master key (asks for the passphrase).",
      discussion: """
        The page shows the key as four checked lines and its fingerprint; \
        `reel key create --from-paper` types it back in. Anyone holding the page can read \
        the archives: print it, do not store it beside them.
        """)

    @Argument(help: "The key file (default: $REEL_KEY).") var file: String?

    func run() throws {
      let keyFile = try KeyFile.read(at: keyFilePath(file))
      let key = try keyFile.open(passphrase: Passphrase.obtain(for: keyFile.path))
      print(PaperKey.page(for: key, label: keyFile.label, created: keyFile.created, printed: .now()), terminator: "")
    }
  }
}

/// The key file a command uses: the one given, else `$REEL_KEY`.
func keyFilePath(_ given: String?) throws -> String {
  if let given { return given }
  if let path = ProcessInfo.processInfo.environment["REEL_KEY"], !path.isEmpty { return path }
  throw ReelError(.usage, "no key file given", remedy: "name the key file, or set REEL_KEY to its path")
}
