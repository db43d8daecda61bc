import QLTensor

/// Errors about a checkpoint's content, each naming the file and, where there is one, the tensor.
enum CheckpointError {
    /// `FILE: tensor `NAME`: problem` as a ``TensorError/Code/checkpointFormat`` error.
    static func format(_ path: String, tensor: String? = nil, _ problem: String) -> TensorError {
        TensorError(.checkpointFormat, location(path, tensor) + problem)
    }

    /// The same error with the file and tensor put in front of an error from a lower layer (a layout's
    /// shape check, say), keeping its code.
    static func wrapping(_ error: Error, _ path: String, tensor: String?) -> TensorError {
        guard let error = error as? TensorError else {
            return TensorError(.checkpointFormat, location(path, tensor) + "\(error)")
        }
        return TensorError(error.code, location(path, tensor) + error.message, underlying: error.underlying)
    }

    static func location(_ path: String, _ tensor: String?) -> String {
        tensor.map { "\(path): tensor `\($0)`: " } ?? "\(path): "
    }
}
