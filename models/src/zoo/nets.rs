//! The zoo's burn modules and their forward passes.
//!
//! Modules are only built from complete, checked weights (see
//! [`Model::from_tensors`](super::Model::from_tensors)), so every parameter
//! here holds the values a caller chose or a seed produced.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

use super::kind::{INPUT_FEATURES, Layer};

/// Side of the square MNIST image the CNN reshapes its input to.
const IMAGE_SIDE: usize = 28;

/// `logreg`: one linear layer, 784 → 10.
#[derive(Module, Debug)]
pub struct LogReg {
    /// The only layer, `fc`.
    pub fc: Linear,
}

/// `2nn`: 784 → 200 → 200 → 10 with ReLU after each hidden layer.
#[derive(Module, Debug)]
pub struct TwoNn {
    /// First hidden layer, 784 → 200.
    pub fc1: Linear,
    /// Second hidden layer, 200 → 200.
    pub fc2: Linear,
    /// Output layer, 200 → 10.
    pub fc3: Linear,
    relu: Relu,
}

/// `cnn`: conv 5×5×32 → ReLU → max-pool 2×2 → conv 5×5×64 → ReLU →
/// max-pool 2×2 → FC 3136 → 512 → ReLU → FC 512 → 10; convolutions keep the
/// image size ("same" padding), so the pools take 28×28 to 14×14 to 7×7.
#[derive(Module, Debug)]
pub struct Cnn {
    /// 1 → 32 channels, 5×5.
    pub conv1: Conv2d,
    /// 32 → 64 channels, 5×5.
    pub conv2: Conv2d,
    /// 7·7·64 = 3136 → 512.
    pub fc1: Linear,
    /// 512 → 10.
    pub fc2: Linear,
    pool: MaxPool2d,
    relu: Relu,
}

/// Weight and bias values for one layer, already checked against its shapes.
pub(crate) struct LayerValues {
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

pub(crate) fn linear(layer: Layer, values: LayerValues, device: &Device) -> Linear {
    let (weight_shape, bias_shape) = layer.shapes();
    let Layer::Linear { d_in, d_out, .. } = layer else { unreachable!("linear() called with {layer:?}") };
    // The config's initialiser is lazy: replacing the parameters below means
    // it never runs, so the global RNG plays no part in the weights.
    let mut fc = LinearConfig::new(d_in, d_out).init(device);
    fc.weight = Param::from_data(TensorData::new(values.weight, weight_shape), device);
    fc.bias = Some(Param::from_data(TensorData::new(values.bias, bias_shape), device));
    fc
}

pub(crate) fn conv(layer: Layer, values: LayerValues, device: &Device) -> Conv2d {
    let (weight_shape, bias_shape) = layer.shapes();
    let Layer::Conv { c_in, c_out, k, .. } = layer else { unreachable!("conv() called with {layer:?}") };
    let mut conv = Conv2dConfig::new([c_in, c_out], [k, k]).with_padding(PaddingConfig2d::Same).init(device);
    conv.weight = Param::from_data(TensorData::new(values.weight, weight_shape), device);
    conv.bias = Some(Param::from_data(TensorData::new(values.bias, bias_shape), device));
    conv
}

impl LogReg {
    pub(crate) fn new(fc: Linear) -> Self {
        Self { fc }
    }

    /// Logits `[B, 10]` for inputs `[B, 784]`.
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        self.fc.forward(input)
    }
}

impl TwoNn {
    pub(crate) fn new(fc1: Linear, fc2: Linear, fc3: Linear) -> Self {
        Self { fc1, fc2, fc3, relu: Relu::new() }
    }

    /// Logits `[B, 10]` for inputs `[B, 784]`.
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let x = self.relu.forward(self.fc1.forward(input));
        let x = self.relu.forward(self.fc2.forward(x));
        self.fc3.forward(x)
    }
}

impl Cnn {
    pub(crate) fn new(conv1: Conv2d, conv2: Conv2d, fc1: Linear, fc2: Linear) -> Self {
        Self { conv1, conv2, fc1, fc2, pool: MaxPool2dConfig::new([2, 2]).init(), relu: Relu::new() }
    }

    /// Logits `[B, 10]` for inputs `[B, 784]`, each row a 28×28 image in
    /// row-major order.
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let [batch, features] = input.dims();
        debug_assert_eq!(features, INPUT_FEATURES);
        let x = input.reshape([batch, 1, IMAGE_SIDE, IMAGE_SIDE]);
        let x = self.pool.forward(self.relu.forward(self.conv1.forward(x)));
        let x = self.pool.forward(self.relu.forward(self.conv2.forward(x)));
        let x: Tensor<2> = x.flatten(1, 3);
        let x = self.relu.forward(self.fc1.forward(x));
        self.fc2.forward(x)
    }
}
