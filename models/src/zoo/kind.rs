//! The zoo's models by stable name, and the names and shapes of their tensors.

use std::fmt;
use std::str::FromStr;

use starling_protocol::{DataSpec, ModelSpec, TensorSpec};

use super::ZooError;

/// Features per input example: a flattened 28×28 MNIST image.
pub const INPUT_FEATURES: usize = 784;
/// Output classes (logits per example).
pub const NUM_CLASSES: usize = 10;

/// One of the zoo's models, as a task names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// `logreg`: multinomial logistic regression, 784 → 10.
    LogReg,
    /// `2nn`: MLP 784-200-200-10 with ReLU (199,210 parameters).
    TwoNn,
    /// `cnn`: two 5×5 conv + 2×2 max-pool blocks (32, 64 channels, "same"
    /// padding), FC 3136 → 512 with ReLU, then 512 → 10 (1,663,370 parameters).
    Cnn,
}

/// A layer with parameters, as the zoo lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layer {
    /// Fully connected: `weight` `[d_in, d_out]`, `bias` `[d_out]`.
    Linear { name: &'static str, d_in: usize, d_out: usize },
    /// Square 2-D convolution: `weight` `[c_out, c_in, k, k]`, `bias` `[c_out]`.
    Conv { name: &'static str, c_in: usize, c_out: usize, k: usize },
}

impl Layer {
    /// The layer's prefix in tensor names (`"fc1"`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Layer::Linear { name, .. } | Layer::Conv { name, .. } => name,
        }
    }

    /// Inputs feeding each output unit, for initialisation bounds.
    pub(crate) fn fan_in(self) -> usize {
        match self {
            Layer::Linear { d_in, .. } => d_in,
            Layer::Conv { c_in, k, .. } => c_in * k * k,
        }
    }

    /// The shapes of `weight` and `bias`.
    pub(crate) fn shapes(self) -> (Vec<usize>, Vec<usize>) {
        match self {
            Layer::Linear { d_in, d_out, .. } => (vec![d_in, d_out], vec![d_out]),
            Layer::Conv { c_in, c_out, k, .. } => (vec![c_out, c_in, k, k], vec![c_out]),
        }
    }
}

impl ModelKind {
    /// Every model in the zoo.
    pub const ALL: [ModelKind; 3] = [ModelKind::LogReg, ModelKind::TwoNn, ModelKind::Cnn];

    /// The stable name used in task specs: `logreg`, `2nn` or `cnn`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::LogReg => "logreg",
            ModelKind::TwoNn => "2nn",
            ModelKind::Cnn => "cnn",
        }
    }

    pub(crate) fn layers(self) -> &'static [Layer] {
        match self {
            ModelKind::LogReg => &[Layer::Linear { name: "fc", d_in: INPUT_FEATURES, d_out: NUM_CLASSES }],
            ModelKind::TwoNn => &[
                Layer::Linear { name: "fc1", d_in: INPUT_FEATURES, d_out: 200 },
                Layer::Linear { name: "fc2", d_in: 200, d_out: 200 },
                Layer::Linear { name: "fc3", d_in: 200, d_out: NUM_CLASSES },
            ],
            ModelKind::Cnn => &[
                Layer::Conv { name: "conv1", c_in: 1, c_out: 32, k: 5 },
                Layer::Conv { name: "conv2", c_in: 32, c_out: 64, k: 5 },
                Layer::Linear { name: "fc1", d_in: 7 * 7 * 64, d_out: 512 },
                Layer::Linear { name: "fc2", d_in: 512, d_out: NUM_CLASSES },
            ],
        }
    }

    /// The model's tensors, in layer order, `weight` before `bias`.
    ///
    /// Names are `<layer>.weight` and `<layer>.bias`. Shapes are as burn
    /// stores them: a linear layer's weight is `[in, out]` (the transpose of
    /// PyTorch's `[out, in]`; the layer computes `x · W + b`), a convolution's
    /// is `[out_channels, in_channels, kh, kw]` as in PyTorch.
    pub fn tensor_specs(self) -> Vec<TensorSpec> {
        self.layers()
            .iter()
            .flat_map(|layer| {
                let (weight, bias) = layer.shapes();
                [
                    TensorSpec::new(format!("{}.weight", layer.name()), weight),
                    TensorSpec::new(format!("{}.bias", layer.name()), bias),
                ]
            })
            .collect()
    }

    /// The zoo model a task names: `model` is the zoo's name (`cnn`), or the
    /// name after the task's dataset and a dash (`mnist-cnn` for a task on
    /// `mnist`), the form the marketplace lists models under. This is the
    /// one place that reading is written; clients, the coordinator's
    /// evaluator and the marketplace all use it.
    pub fn for_task_name(model: &str, dataset: &str) -> Result<Self, ZooError> {
        model.parse().or_else(|error| match model.strip_prefix(dataset).and_then(|rest| rest.strip_prefix('-')) {
            Some(architecture) if !dataset.is_empty() => {
                architecture.parse().map_err(|_| ZooError::UnknownModel(model.to_owned()))
            }
            _ => Err(error),
        })
    }

    /// The model as a task spec names it: the zoo name and its tensors.
    pub fn model_spec(self) -> ModelSpec {
        ModelSpec { name: self.name().into(), tensors: self.tensor_specs() }
    }

    /// The data every zoo model reads: MNIST's 28×28 grey images in 10 classes.
    pub fn data_spec(self) -> DataSpec {
        DataSpec { dataset: "mnist".into(), input_shape: vec![1, 28, 28], num_classes: NUM_CLASSES as u32 }
    }

    /// Total number of trainable scalars.
    pub fn parameter_count(self) -> usize {
        self.tensor_specs().iter().map(|s| s.shape.iter().product::<usize>()).sum()
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = ZooError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelKind::ALL.into_iter().find(|kind| kind.name() == s).ok_or_else(|| ZooError::UnknownModel(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_the_paper() {
        assert_eq!(ModelKind::LogReg.parameter_count(), 7_850);
        assert_eq!(ModelKind::TwoNn.parameter_count(), 199_210);
        assert_eq!(ModelKind::Cnn.parameter_count(), 1_663_370);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for kind in ModelKind::ALL {
            assert_eq!(kind.name().parse::<ModelKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.name());
        }
        let err = "resnet".parse::<ModelKind>().unwrap_err();
        assert!(matches!(err, ZooError::UnknownModel(ref name) if name == "resnet"), "{err}");
    }

    #[test]
    fn task_names_are_zoo_names_with_or_without_the_dataset() {
        for kind in ModelKind::ALL {
            assert_eq!(ModelKind::for_task_name(kind.name(), "mnist").unwrap(), kind);
            assert_eq!(ModelKind::for_task_name(&format!("mnist-{kind}"), "mnist").unwrap(), kind);
            assert_eq!(ModelKind::for_task_name(&format!("cancer-{kind}"), "cancer").unwrap(), kind);
        }
        // Another dataset's prefix, a bare prefix, an unknown architecture
        // and an empty dataset are all refused, naming the whole name.
        for (model, dataset) in [("mnist-cnn", "cancer"), ("mnist-", "mnist"), ("mnist-resnet", "mnist"), ("-cnn", "")]
        {
            let err = ModelKind::for_task_name(model, dataset).unwrap_err();
            assert!(matches!(err, ZooError::UnknownModel(ref name) if name == model), "{model} on {dataset}: {err}");
        }
    }

    #[test]
    fn cnn_tensor_names_and_shapes() {
        let specs = ModelKind::Cnn.tensor_specs();
        let expected = [
            ("conv1.weight", vec![32, 1, 5, 5]),
            ("conv1.bias", vec![32]),
            ("conv2.weight", vec![64, 32, 5, 5]),
            ("conv2.bias", vec![64]),
            ("fc1.weight", vec![3136, 512]),
            ("fc1.bias", vec![512]),
            ("fc2.weight", vec![512, 10]),
            ("fc2.bias", vec![10]),
        ];
        let got: Vec<_> = specs.iter().map(|s| (s.name.as_str(), s.shape.clone())).collect();
        assert_eq!(got, expected);
    }
}
