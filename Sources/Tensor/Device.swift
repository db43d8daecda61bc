/// Where a tensor's bytes live.
public enum Device: Hashable, Sendable, CustomStringConvertible {
    case cpu
    /// The CUDA device with this ordinal.
    case cuda(Int)

    public var description: String {
        switch self {
        case .cpu: "cpu"
        case .cuda(let ordinal): "cuda:\(ordinal)"
        }
    }

    /// The backend family, without the ordinal: what handlers declare they support.
    public var kind: DeviceKind {
        switch self {
        case .cpu: .cpu
        case .cuda: .cuda
        }
    }
}

/// A family of devices served by one backend.
public enum DeviceKind: String, Hashable, Sendable, CaseIterable {
    case cpu
    case cuda
}
