import CCurl
import Foundation
import ReelCore

/// One HTTP request to an S3 service, its path and query already encoded.
struct HTTPRequest {
  var method: String
  /// The whole URL, from `S3Address`.
  var url: String
  /// "Name: value" lines; curl signs them all (SigV4).
  var headers: [String] = []
  /// The most response body this request may collect in memory (not for a sink).
  var responseLimit = 8 << 20
  /// For a sink: the only success status whose body it may see (206 for a range), and the
  /// Content-Length that body must declare. Anything else stops the transfer unread.
  var sinkStatus: Int?
  var sinkLength: UInt64?
}

/// What came back: status, headers (names lower-cased, the last of each), and the body
/// when it was collected (errors always are; successes unless a sink took them).
struct HTTPResponse {
  var status: Int
  var headers: [String: String]
  var body: [UInt8]

  var isSuccess: Bool { (200..<300).contains(status) }
}

/// A transfer that failed below HTTP: no connection, a timeout, TLS, a callback's error.
struct TransportFailure: Error {
  enum Kind { case unreachable, timedOut, broken, tls, tlsBundle, tooLarge, unexpectedReply, other }
  var kind: Kind
  var code: Int32
  var detail: String

  var isTransient: Bool { kind == .unreachable || kind == .timedOut || kind == .broken }
}

/// One curl easy handle: kept between requests so its connection is reused. Used from one
/// thread at a time.
final class CurlConnection {
  private let handle: UnsafeMutableRawPointer
  private let settings: S3Settings
  private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

  /// Why libcurl cannot be used, or nil once it is loaded (on first use: CLazyLibrary) and
  /// initialised.
  private static let unavailable: ReelError? = {
    if let message = reel_curl_load() { return ReelError(.notFound, String(cString: message)) }
    guard reel_curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK else {
      return ReelError(.io, "libcurl could not be initialised")
    }
    return nil
  }()

  init(settings: S3Settings) throws {
    if let unavailable = Self.unavailable { throw unavailable }
    guard let handle = reel_curl_easy_init() else { throw ReelError(.io, "libcurl could not be initialised") }
    self.handle = handle
    self.settings = settings
  }

  deinit {
    reel_curl_easy_cleanup(handle)
    errorBuffer.deallocate()
  }

  /// Sends `request` with `body` (PUT and POST; nil sends none) and returns the response.
  /// A successful response's body goes to `sink` when one is given.
  func perform(
    _ request: HTTPRequest, body: UnsafeRawBufferPointer? = nil,
    sink: ((UnsafeRawBufferPointer) throws -> Void)? = nil, headers: (([String: String]) -> Void)? = nil
  ) throws -> HTTPResponse {
    reel_curl_easy_reset(handle)
    let transfer = Transfer(body: body, sink: sink, request: request)
    transfer.sinkHeaders = headers
    let context = Unmanaged.passRetained(transfer)
    defer { context.release() }
    var headerList: UnsafeMutablePointer<curl_slist>?
    defer { reel_curl_slist_free_all(headerList) }

    // No "Expect:" to turn off 100-continue: libcurl 7.88 would sign the empty header it
    // then leaves out, and the server would refuse the signature.
    var lines = request.headers
    if let token = settings.credentials.sessionToken { lines.append("x-amz-security-token: \(token)") }
    for line in lines { headerList = reel_curl_slist_append(headerList, line) }

    errorBuffer[0] = 0
    try set(CURLOPT_ERRORBUFFER, pointer: errorBuffer)
    try set(CURLOPT_URL, string: request.url)
    try set(CURLOPT_NOSIGNAL, long: 1)
    try set(CURLOPT_AWS_SIGV4, string: "aws:amz:\(settings.endpoint.region):s3")
    try set(CURLOPT_USERNAME, string: settings.credentials.accessKeyID)
    try set(CURLOPT_PASSWORD, string: settings.credentials.secretAccessKey)
    try set(CURLOPT_HTTPHEADER, list: headerList)
    try set(CURLOPT_CONNECTTIMEOUT_MS, long: Int(settings.connectTimeout.milliseconds))
    try set(CURLOPT_LOW_SPEED_LIMIT, long: 1024)
    try set(CURLOPT_LOW_SPEED_TIME, long: max(1, Int(settings.stallTimeout.milliseconds / 1000)))
    try set(CURLOPT_SSL_VERIFYPEER, long: 1)
    try set(CURLOPT_SSL_VERIFYHOST, long: 2)
    if let bundle = settings.endpoint.caBundle { try set(CURLOPT_CAINFO, string: bundle) }
    try set(CURLOPT_PROTOCOLS_STR, string: "http,https")
    try set(CURLOPT_BUFFERSIZE, long: 512 << 10)
    try set(CURLOPT_UPLOAD_BUFFERSIZE, long: 2 << 20)

    try set(CURLOPT_HEADERFUNCTION, callback: headerCallback)
    try set(CURLOPT_HEADERDATA, pointer: context.toOpaque())
    try set(CURLOPT_WRITEFUNCTION, callback: writeCallback)
    try set(CURLOPT_WRITEDATA, pointer: context.toOpaque())
    switch request.method {
    case "HEAD":
      try set(CURLOPT_NOBODY, long: 1)
    case "PUT", "POST":
      try set(CURLOPT_UPLOAD, long: 1)
      try set(CURLOPT_INFILESIZE_LARGE, offset: curl_off_t(body?.count ?? 0))
      try set(CURLOPT_READFUNCTION, callback: readCallback)
      try set(CURLOPT_READDATA, pointer: context.toOpaque())
      try set(CURLOPT_CUSTOMREQUEST, string: request.method)
    case "GET":
      break
    default:
      try set(CURLOPT_CUSTOMREQUEST, string: request.method)
    }

    let code = reel_curl_easy_perform(handle)
    if let error = transfer.sinkError { throw error }
    guard code == CURLE_OK else { throw failure(code, transfer: transfer) }
    var status = 0
    _ = reel_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
    return HTTPResponse(status: status, headers: transfer.headers, body: transfer.collected)
  }

  private func failure(_ code: CURLcode, transfer: Transfer) -> TransportFailure {
    if let reply = transfer.unexpectedReply {
      return TransportFailure(kind: .unexpectedReply, code: Int32(code.rawValue), detail: reply)
    }
    let detail = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: reel_curl_easy_strerror(code))
    let kind: TransportFailure.Kind =
      switch code {
      case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: .unreachable
      case CURLE_OPERATION_TIMEDOUT: .timedOut
      case CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE: .broken
      case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM: .tls
      case CURLE_SSL_CACERT_BADFILE: .tlsBundle
      case CURLE_WRITE_ERROR where transfer.tooLarge: .tooLarge
      case CURLE_WRITE_ERROR where transfer.unexpectedReply != nil: .unexpectedReply
      default: .other
      }
    return TransportFailure(kind: kind, code: Int32(code.rawValue), detail: detail)
  }

  private func check(_ code: CURLcode, _ option: CURLoption) throws {
    guard code == CURLE_OK else {
      throw ReelError(
        .io, "libcurl refused option \(option.rawValue): \(String(cString: reel_curl_easy_strerror(code)))")
    }
  }

  private func set(_ option: CURLoption, long value: Int) throws {
    try check(reel_curl_setopt_long(handle, option, value), option)
  }

  private func set(_ option: CURLoption, offset value: curl_off_t) throws {
    try check(reel_curl_setopt_off_t(handle, option, value), option)
  }

  private func set(_ option: CURLoption, string value: String) throws {
    // libcurl copies string options (since 7.17).
    try check(reel_curl_setopt_string(handle, option, value), option)
  }

  private func set(_ option: CURLoption, pointer value: UnsafeMutableRawPointer?) throws {
    try check(reel_curl_setopt_pointer(handle, option, value), option)
  }

  private func set(_ option: CURLoption, pointer value: UnsafeMutablePointer<CChar>) throws {
    try check(reel_curl_setopt_pointer(handle, option, UnsafeMutableRawPointer(value)), option)
  }

  private func set(_ option: CURLoption, list value: UnsafeMutablePointer<curl_slist>?) throws {
    try check(reel_curl_setopt_slist(handle, option, value), option)
  }

  private func set(_ option: CURLoption, callback value: reel_curl_data_callback) throws {
    try check(reel_curl_setopt_callback(handle, option, value), option)
  }
}

/// The state of one transfer, reached from curl's callbacks through their context pointer.
private final class Transfer {
  let body: UnsafeRawBufferPointer?
  var sent = 0
  let sink: ((UnsafeRawBufferPointer) throws -> Void)?
  var sinkError: (any Error)?
  let limit: Int
  let sinkStatus: Int?
  let sinkLength: UInt64?
  var tooLarge = false
  var unexpectedReply: String?
  var sinkStarted = false
  /// Told the headers of the reply whose body the sink is about to see.
  var sinkHeaders: (([String: String]) -> Void)?
  /// The status of the response being received (a 100 Continue comes before the real one).
  var status = 0
  var headers: [String: String] = [:]
  var collected: [UInt8] = []

  init(body: UnsafeRawBufferPointer?, sink: ((UnsafeRawBufferPointer) throws -> Void)?, request: HTTPRequest) {
    self.body = body
    self.sink = sink
    limit = request.responseLimit
    sinkStatus = request.sinkStatus
    sinkLength = request.sinkLength
  }

  func header(_ line: UnsafeRawBufferPointer) {
    guard line.count <= 16 << 10 else { return }
    let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    if text.hasPrefix("HTTP/") {
      let fields = text.split(separator: " ")
      status = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
      headers = [:]
      return
    }
    guard let colon = text.firstIndex(of: ":"), headers.count < 256 else { return }
    let name = text[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
    headers[name] = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
  }

  /// False stops the transfer.
  func received(_ bytes: UnsafeRawBufferPointer) -> Bool {
    if let sink, (200..<300).contains(status) {
      if !sinkStarted {
        sinkStarted = true
        let length = headers["content-length"].flatMap(UInt64.init)
        if let sinkStatus, status != sinkStatus {
          unexpectedReply = "HTTP \(status) where \(sinkStatus) was expected"
          return false
        }
        if let sinkLength, length != sinkLength {
          unexpectedReply = "a body of \(length.map(String.init) ?? "unknown") bytes where \(sinkLength) were asked"
          return false
        }
        sinkHeaders?(headers)
      }
      do {
        try sink(bytes)
        return true
      } catch {
        sinkError = error
        return false
      }
    }
    guard collected.count + bytes.count <= limit else {
      tooLarge = true
      return false
    }
    collected.append(contentsOf: bytes)
    return true
  }

  func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
    guard let body else { return 0 }
    let count = min(buffer.count, body.count - sent)
    guard count > 0 else { return 0 }
    buffer.baseAddress!.copyMemory(from: body.baseAddress! + sent, byteCount: count)
    sent += count
    return count
  }
}

private func transfer(_ context: UnsafeMutableRawPointer?) -> Transfer {
  Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
}

private let headerCallback: reel_curl_data_callback = { buffer, size, count, context in
  transfer(context).header(UnsafeRawBufferPointer(start: buffer, count: size * count))
  return size * count
}

private let writeCallback: reel_curl_data_callback = { buffer, size, count, context in
  transfer(context).received(UnsafeRawBufferPointer(start: buffer, count: size * count)) ? size * count : 0
}

private let readCallback: reel_curl_data_callback = { buffer, size, count, context in
  transfer(context).fill(UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
}

extension Duration {
  var milliseconds: Int64 {
    let (seconds, attoseconds) = components
    return seconds * 1000 + attoseconds / 1_000_000_000_000_000
  }
}
