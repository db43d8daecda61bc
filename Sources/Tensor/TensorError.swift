/// The one error type of the library: every failure a user can cause or meet is one of these.
///
/// Each error carries a ``Code`` to match on, a message that says what went wrong and how to fix it,
/// and, where a lower layer failed (the CUDA driver, NVRTC, the file system), that layer's own words
/// in ``underlying``.
public struct TensorError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of problem this is.
    public enum Code: String, Sendable, Equatable {
        case shapeMismatch
        case unsupportedDType
        case invalidArgument
        case invalidBlockSize
        case nonFiniteValue
        case deviceMismatch
        case deviceUnavailable
        case fallbackForbidden
        case unsupportedOperation
        case backendFailure
        case checkpointFormat
        case io
    }

    public let code: Code
    public let message: String
    /// The lower layer's own message (a driver error string, a compile log, errno text), if any.
    public let underlying: String?

    public init(_ code: Code, _ message: String, underlying: String? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        if let underlying { return "\(code.rawValue): \(message)\n\(underlying)" }
        return "\(code.rawValue): \(message)"
    }
}
