import Foundation
import ReelArchive
import ReelCore

/// Reads `manifest.json` from the first bytes of a sealed archive without reading the
/// rest: it is the second member, after a short README, so a few KiB hold it. Used to
/// name an archive before it is written and to name the remains of one cut off at end
/// of media, which full verification cannot do.
enum ArchivePeek {
  /// How many leading bytes are enough to find the manifest.
  static let prefixLimit = 4 << 20

  static func manifest(fromPrefix bytes: [UInt8], describing what: String) throws -> ArchiveManifest {
    var offset = 0
    var paxPath: String?
    var paxSize: Int?
    var firstHeader = true
    while offset + 512 <= bytes.count {
      let header = bytes[offset..<(offset + 512)]
      if header.allSatisfy({ $0 == 0 }) { break }
      guard isTarHeader(header) else {
        throw notReel(what, firstHeader ? "it is not a tar archive" : "its tar headers are damaged")
      }
      firstHeader = false
      let type = header[header.startIndex + 156]
      let size = paxSize ?? octal(header[(header.startIndex + 124)..<(header.startIndex + 136)])
      let name = paxPath ?? headerName(header)
      paxPath = nil
      paxSize = nil
      let dataStart = offset + 512
      let dataEnd = dataStart + size
      guard dataEnd <= bytes.count else { break }
      let data = bytes[dataStart..<dataEnd]
      switch type {
      case UInt8(ascii: "x"):
        (paxPath, paxSize) = paxRecords(data)
      case UInt8(ascii: "g"):
        break
      default:
        if name == "manifest.json" {
          do {
            let manifest = try JSONDecoder().decode(ArchiveManifest.self, from: Data(data))
            guard manifest.format == ArchiveManifest.formatName else {
              throw notReel(what, "its manifest.json is not a Reel manifest")
            }
            return manifest
          } catch let error as ReelError {
            throw error
          } catch {
            throw notReel(what, "its manifest.json cannot be read (\(error))")
          }
        }
      }
      offset = dataStart + (size + 511) / 512 * 512
    }
    throw notReel(what, firstHeader ? "it is not a tar archive" : "it holds no Reel manifest.json")
  }

  static func isTarHeader(_ header: ArraySlice<UInt8>) -> Bool {
    guard header.count >= 512 else { return false }
    let magic = header[(header.startIndex + 257)..<(header.startIndex + 262)]
    guard Array(magic) == Array("ustar".utf8) else { return false }
    // The checksum counts the checksum field itself as eight spaces.
    var sum = 0
    for (index, byte) in header.enumerated() {
      sum += (148..<156).contains(index) ? 32 : Int(byte)
    }
    return sum == octal(header[(header.startIndex + 148)..<(header.startIndex + 156)])
  }

  private static func headerName(_ header: ArraySlice<UInt8>) -> String {
    func field(_ range: Range<Int>) -> String {
      let bytes = header[(header.startIndex + range.lowerBound)..<(header.startIndex + range.upperBound)]
      return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
    let prefix = field(345..<500)
    let name = field(0..<100)
    return prefix.isEmpty ? name : prefix + "/" + name
  }

  private static func octal(_ field: ArraySlice<UInt8>) -> Int {
    var value = 0
    for byte in field {
      if byte == 0 || byte == 32 {
        if value > 0 { break } else { continue }
      }
      guard byte >= 48 && byte <= 55 else { break }
      value = value * 8 + Int(byte - 48)
    }
    return value
  }

  /// `path` and `size` from a pax extended header: records `LEN key=value\n`.
  private static func paxRecords(_ data: ArraySlice<UInt8>) -> (String?, Int?) {
    var path: String?
    var size: Int?
    for record in String(decoding: data, as: UTF8.self).split(separator: "\n") {
      guard let space = record.firstIndex(of: " "), let equals = record.firstIndex(of: "=") else { continue }
      let key = record[record.index(after: space)..<equals]
      let value = String(record[record.index(after: equals)...])
      if key == "path" { path = value }
      if key == "size" { size = Int(value) }
    }
    return (path, size)
  }

  static func notReel(_ what: String, _ reason: String) -> ReelError {
    ReelError(
      .corrupt, "\(what) is not a Reel archive: \(reason)",
      remedy: "export only archives made by `reel seal` (files named *.reel.tar)")
  }
}
