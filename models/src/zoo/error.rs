//! What can go wrong when naming a model or loading its weights.

use starling_protocol::PayloadError;

/// An error from the model zoo: an unknown model name, or weights that do
/// not fit the model. Each variant names the tensor at fault where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    /// The name is none of the zoo's models (`logreg`, `2nn`, `cnn`).
    #[error("unknown model {0:?}: expected one of logreg, 2nn, cnn")]
    UnknownModel(String),
    /// The model needs this tensor and the weights lack it.
    #[error("missing tensor {name:?}")]
    MissingTensor {
        /// The tensor's name, e.g. `"fc1.weight"`.
        name: String,
    },
    /// The weights hold a tensor the model does not have.
    #[error("unexpected tensor {name:?}: the model has no such parameter")]
    UnexpectedTensor {
        /// The tensor's name.
        name: String,
    },
    /// The weights name the same tensor twice.
    #[error("duplicate tensor {name:?}")]
    DuplicateTensor {
        /// The tensor's name.
        name: String,
    },
    /// The tensor is present but its declared shape is not the model's.
    #[error("tensor {name:?} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The tensor's name.
        name: String,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// The shape the weights declare.
        found: Vec<usize>,
    },
    /// The tensor's value count does not match its own (correct) shape.
    #[error("tensor {name:?} has {found} values, its shape needs {expected}")]
    ValueCount {
        /// The tensor's name.
        name: String,
        /// Elements the shape implies.
        expected: usize,
        /// Values supplied.
        found: usize,
    },
    /// A value of the tensor is NaN or infinite.
    #[error("tensor {name:?} has a non-finite value at index {index}")]
    NonFinite {
        /// The tensor's name.
        name: String,
        /// Row-major index of the first bad element.
        index: usize,
    },
    /// Reading a tensor back from the backend failed.
    #[error("reading tensor {name:?} from the device failed: {reason}")]
    Readback {
        /// The tensor's name.
        name: String,
        /// The backend's description of the failure.
        reason: String,
    },
    /// Encoding or decoding the safetensors payload failed.
    #[error("payload: {0}")]
    Payload(#[from] PayloadError),
}
