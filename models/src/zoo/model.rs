//! A zoo model of any kind: seeded initialisation, forward pass, and
//! conversion to and from named `f32` tensors and safetensors payloads.

use std::collections::HashMap;

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};
use starling_protocol::payload::{decode, max_header_len};
use starling_protocol::{NamedTensor, UpdatePayload};

use super::ZooError;
use super::kind::{INPUT_FEATURES, Layer, ModelKind, NUM_CLASSES};
use super::nets::{Cnn, LayerValues, LogReg, TwoNn, conv, linear};

/// A model from the zoo, on one burn device.
///
/// Build it with [`Model::init`] (seeded weights) or [`Model::from_tensors`]
/// / [`Model::from_payload`] (given weights). For training, build it on an
/// autodiff device (`Device::flex().autodiff()`).
#[derive(Module, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a trainer holds one model and moves it once per optimiser step; under 1 KiB of handles, not weights"
)]
pub enum Model {
    /// `logreg`.
    LogReg(LogReg),
    /// `2nn`.
    TwoNn(TwoNn),
    /// `cnn`.
    Cnn(Cnn),
}

/// A parameterised layer of a built model, borrowed.
enum LayerRef<'a> {
    Linear(&'a Linear),
    Conv(&'a Conv2d),
}

impl Model {
    /// A `kind` model on `device` with weights drawn from `seed`.
    ///
    /// Every weight and bias is drawn from U(−1/√fan_in, 1/√fan_in) (PyTorch's
    /// and burn's default for these layers) by a ChaCha8 generator seeded
    /// with `seed`, layer by layer in [`ModelKind::tensor_specs`] order. The
    /// values depend only on `kind` and `seed`: not on the device, the thread,
    /// or burn's global RNG (which [`Device::seed`] sets process-wide and so
    /// would race between concurrent initialisations).
    pub fn init(kind: ModelKind, seed: u64, device: &Device) -> Self {
        let tensors = initial_tensors(kind, seed);
        Self::from_tensors(kind, &tensors, device).expect("initial tensors match the model's specs by construction")
    }

    /// Which zoo model this is.
    pub fn kind(&self) -> ModelKind {
        match self {
            Model::LogReg(_) => ModelKind::LogReg,
            Model::TwoNn(_) => ModelKind::TwoNn,
            Model::Cnn(_) => ModelKind::Cnn,
        }
    }

    /// Logits `[B, 10]` for a batch of flattened 28×28 images `[B, 784]`.
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        match self {
            Model::LogReg(net) => net.forward(input),
            Model::TwoNn(net) => net.forward(input),
            Model::Cnn(net) => net.forward(input),
        }
    }

    /// Class probabilities (softmax of the logits), one row of
    /// [`NUM_CLASSES`] per input, for `inputs`: whole flattened 28×28 images
    /// of [`INPUT_FEATURES`] values in `[0, 1]`, back to back. Runs without
    /// recording gradients on the model's device.
    ///
    /// # Panics
    /// If `inputs.len()` is not a multiple of [`INPUT_FEATURES`]: the caller
    /// checks untrusted input first.
    pub fn probabilities(&self, inputs: &[f32]) -> Result<Vec<Vec<f32>>, ZooError> {
        assert_eq!(inputs.len() % INPUT_FEATURES, 0, "inputs must be whole images");
        let n = inputs.len() / INPUT_FEATURES;
        if n == 0 {
            return Ok(Vec::new());
        }
        let model = self.valid();
        let device = model.devices().into_iter().next().unwrap_or_else(Device::flex);
        let input = Tensor::from_data(TensorData::new(inputs.to_vec(), [n, INPUT_FEATURES]), &device);
        let probabilities = burn::tensor::activation::softmax(model.forward(input), 1);
        let failed = |reason: String| ZooError::Readback { name: "probabilities".into(), reason };
        let data = probabilities.try_into_data().map_err(|err| failed(format!("{err:?}")))?;
        let values = data.try_into_vec::<f32>().map_err(|err| failed(format!("{err:?}")))?;
        Ok(values.chunks(NUM_CLASSES).map(<[f32]>::to_vec).collect())
    }

    /// A `kind` model on `device` holding exactly `tensors`.
    ///
    /// `tensors` may come in any order but must name each of
    /// [`ModelKind::tensor_specs`] once, with that shape, the matching
    /// number of values, all finite, and nothing else. Anything else is an
    /// error naming the first offending tensor (missing and misshapen
    /// tensors are reported in spec order, before unexpected ones).
    pub fn from_tensors(kind: ModelKind, tensors: &[NamedTensor], device: &Device) -> Result<Self, ZooError> {
        let mut by_name: HashMap<&str, &NamedTensor> = HashMap::with_capacity(tensors.len());
        for tensor in tensors {
            if by_name.insert(tensor.name.as_str(), tensor).is_some() {
                return Err(ZooError::DuplicateTensor { name: tensor.name.clone() });
            }
        }
        let specs = kind.tensor_specs();
        for spec in &specs {
            let tensor =
                by_name.get(spec.name.as_str()).ok_or_else(|| ZooError::MissingTensor { name: spec.name.clone() })?;
            check_tensor(tensor, &spec.shape)?;
        }
        // Every spec is present and names are unique, so any surplus is unexpected.
        if let Some(extra) = tensors.iter().find(|t| !specs.iter().any(|s| s.name == t.name)) {
            return Err(ZooError::UnexpectedTensor { name: extra.name.clone() });
        }

        let values = |layer: Layer| LayerValues {
            weight: by_name[format!("{}.weight", layer.name()).as_str()].values.clone(),
            bias: by_name[format!("{}.bias", layer.name()).as_str()].values.clone(),
        };
        let layers = kind.layers();
        let lin = |i: usize| linear(layers[i], values(layers[i]), device);
        let cnv = |i: usize| conv(layers[i], values(layers[i]), device);
        Ok(match kind {
            ModelKind::LogReg => Model::LogReg(LogReg::new(lin(0))),
            ModelKind::TwoNn => Model::TwoNn(TwoNn::new(lin(0), lin(1), lin(2))),
            ModelKind::Cnn => Model::Cnn(Cnn::new(cnv(0), cnv(1), lin(2), lin(3))),
        })
    }

    /// The model's weights as named row-major `f32` tensors, in
    /// [`ModelKind::tensor_specs`] order with those names and shapes.
    pub fn to_tensors(&self) -> Result<Vec<NamedTensor>, ZooError> {
        let mut out = Vec::with_capacity(2 * self.kind().layers().len());
        for (layer, module) in self.kind().layers().iter().zip(self.layer_refs()) {
            let (weight_shape, bias_shape) = layer.shapes();
            let (weight, bias) = match module {
                LayerRef::Linear(fc) => (read(&fc.weight, layer, "weight")?, read_bias(fc.bias.as_ref(), layer)?),
                LayerRef::Conv(cv) => (read(&cv.weight, layer, "weight")?, read_bias(cv.bias.as_ref(), layer)?),
            };
            out.push(NamedTensor::new(format!("{}.weight", layer.name()), weight_shape, weight));
            out.push(NamedTensor::new(format!("{}.bias", layer.name()), bias_shape, bias));
        }
        Ok(out)
    }

    /// The model's weights as a safetensors payload (the protocol's update format).
    pub fn to_payload(&self) -> Result<UpdatePayload, ZooError> {
        Ok(UpdatePayload::encode_owned(&self.to_tensors()?)?)
    }

    /// A `kind` model on `device` from safetensors `bytes`, decoded with the
    /// protocol's strict decoder (exactly the model's tensors, `F32`, right
    /// shapes, finite values; errors name the tensor).
    pub fn from_payload(kind: ModelKind, bytes: &[u8], device: &Device) -> Result<Self, ZooError> {
        let specs = kind.tensor_specs();
        // Length prefix + the most generous header the decoder accepts + the data.
        let limit = 8 + max_header_len(&specs) + 4 * kind.parameter_count();
        let tensors = decode(bytes, &specs, limit)?;
        Self::from_tensors(kind, &tensors, device)
    }

    /// Every parameter flattened to one dimension, in
    /// [`ModelKind::tensor_specs`] order, still tracked for gradients on an
    /// autodiff device (FedProx's proximal term is built from these).
    pub(crate) fn flat_parameters(&self) -> Vec<Tensor<1>> {
        fn flat<const D: usize>(param: &Param<Tensor<D>>) -> Tensor<1> {
            let value = param.val();
            let n = value.shape().num_elements();
            value.reshape([n])
        }
        let mut out = Vec::with_capacity(2 * self.kind().layers().len());
        for module in self.layer_refs() {
            let (weight, bias) = match module {
                LayerRef::Linear(fc) => (flat(&fc.weight), fc.bias.as_ref().map(flat)),
                LayerRef::Conv(cv) => (flat(&cv.weight), cv.bias.as_ref().map(flat)),
            };
            out.push(weight);
            out.extend(bias);
        }
        out
    }

    fn layer_refs(&self) -> Vec<LayerRef<'_>> {
        match self {
            Model::LogReg(net) => vec![LayerRef::Linear(&net.fc)],
            Model::TwoNn(net) => {
                vec![LayerRef::Linear(&net.fc1), LayerRef::Linear(&net.fc2), LayerRef::Linear(&net.fc3)]
            }
            Model::Cnn(net) => vec![
                LayerRef::Conv(&net.conv1),
                LayerRef::Conv(&net.conv2),
                LayerRef::Linear(&net.fc1),
                LayerRef::Linear(&net.fc2),
            ],
        }
    }
}

/// Seeded initial weights for `kind`, as [`Model::init`] describes.
fn initial_tensors(kind: ModelKind, seed: u64) -> Vec<NamedTensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for &layer in kind.layers() {
        let bound = 1.0 / (layer.fan_in() as f32).sqrt();
        let uniform = Uniform::new_inclusive(-bound, bound).expect("finite bound");
        let (weight_shape, bias_shape) = layer.shapes();
        for (suffix, shape) in [("weight", weight_shape), ("bias", bias_shape)] {
            let values = (0..shape.iter().product::<usize>()).map(|_| uniform.sample(&mut rng)).collect();
            out.push(NamedTensor::new(format!("{}.{suffix}", layer.name()), shape, values));
        }
    }
    out
}

fn check_tensor(tensor: &NamedTensor, expected: &[usize]) -> Result<(), ZooError> {
    if tensor.shape != expected {
        return Err(ZooError::ShapeMismatch {
            name: tensor.name.clone(),
            expected: expected.to_vec(),
            found: tensor.shape.clone(),
        });
    }
    let count: usize = expected.iter().product();
    if tensor.values.len() != count {
        return Err(ZooError::ValueCount { name: tensor.name.clone(), expected: count, found: tensor.values.len() });
    }
    if let Some(index) = tensor.values.iter().position(|v| !v.is_finite()) {
        return Err(ZooError::NonFinite { name: tensor.name.clone(), index });
    }
    Ok(())
}

fn read<const D: usize>(param: &Param<Tensor<D>>, layer: &Layer, suffix: &str) -> Result<Vec<f32>, ZooError> {
    let failed = |reason: String| ZooError::Readback { name: format!("{}.{suffix}", layer.name()), reason };
    let data = param.val().try_into_data().map_err(|err| failed(format!("{err:?}")))?;
    data.try_into_vec::<f32>().map_err(|err| failed(format!("{err:?}")))
}

fn read_bias(bias: Option<&Param<Tensor<1>>>, layer: &Layer) -> Result<Vec<f32>, ZooError> {
    // The zoo builds every layer with a bias; a module without one was not built here.
    let bias = bias.ok_or_else(|| ZooError::MissingTensor { name: format!("{}.bias", layer.name()) })?;
    read(bias, layer, "bias")
}
