//! Tests of the zoo: parameter counts through burn, seeded initialisation,
//! tensor and payload round trips, load errors, and a training step.

use burn::module::Module;
use burn::prelude::*;
use starling_protocol::NamedTensor;

use super::*;

fn flex() -> Device {
    Device::flex()
}

/// A fixed, learnable batch of `n` pseudo-images: example `i` has label
/// `i % 10` and its pixels are bright in the label's band of rows, dim noise
/// elsewhere.
fn batch(n: usize, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let labels: Vec<i64> = (0..n as i64).map(|i| i % NUM_CLASSES as i64).collect();
    let values: Vec<f32> = (0..n * INPUT_FEATURES)
        .map(|i| {
            let (example, pixel) = (i / INPUT_FEATURES, i % INPUT_FEATURES);
            let band = (pixel / 28 / 3) as i64; // rows 0-2 -> 0, 3-5 -> 1, ...
            if band == labels[example] { 1.0 } else { ((i * 7919) % 1000) as f32 / 10_000.0 }
        })
        .collect();
    (
        Tensor::from_data(TensorData::new(values, [n, INPUT_FEATURES]), device),
        Tensor::from_data(TensorData::new(labels, [n]), device),
    )
}

fn outputs(model: &Model, input: Tensor<2>) -> Vec<f32> {
    model.forward(input).into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn burn_counts_the_papers_parameters() {
    let device = flex();
    let expected = [(ModelKind::LogReg, 7_850), (ModelKind::TwoNn, 199_210), (ModelKind::Cnn, 1_663_370)];
    for (kind, count) in expected {
        let model = Model::init(kind, 1, &device);
        assert_eq!(model.num_params(), count, "{kind}");
        assert_eq!(model.kind(), kind);
    }
}

#[test]
fn forward_gives_ten_logits_per_example() {
    let device = flex();
    let (input, _) = batch(3, &device);
    for kind in ModelKind::ALL {
        let logits = Model::init(kind, 7, &device).forward(input.clone());
        assert_eq!(logits.dims(), [3, NUM_CLASSES], "{kind}");
        let values = logits.into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.is_finite()), "{kind}");
    }
}

#[test]
fn probabilities_are_the_softmax_of_the_logits_per_input() {
    let device = flex();
    let (input, _) = batch(3, &device);
    let values = input.clone().into_data().try_to_vec::<f32>().unwrap();
    for kind in ModelKind::ALL {
        let model = Model::init(kind, 5, &device);
        let logits = outputs(&model, input.clone());
        let rows = model.probabilities(&values).unwrap();
        assert_eq!(rows.len(), 3, "{kind}");
        for (row, logits) in rows.iter().zip(logits.chunks(NUM_CLASSES)) {
            let max = logits.iter().fold(f32::MIN, |a, &b| a.max(b));
            let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
            for (p, l) in row.iter().zip(logits) {
                assert!((p - (l - max).exp() / total).abs() < 1e-5, "{kind}: {p} vs softmax of {l}");
            }
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{kind}");
        }
    }
    assert!(Model::init(ModelKind::LogReg, 5, &device).probabilities(&[]).unwrap().is_empty());
}

#[test]
fn same_seed_same_weights_different_seed_different_weights() {
    let device = flex();
    for kind in ModelKind::ALL {
        let a = Model::init(kind, 42, &device).to_tensors().unwrap();
        // Initialise the twin on another thread: burn's global RNG must play no part.
        let b =
            std::thread::spawn(move || Model::init(kind, 42, &Device::flex()).to_tensors().unwrap()).join().unwrap();
        let c = Model::init(kind, 43, &device).to_tensors().unwrap();
        assert_eq!(a, b, "{kind}");
        for (x, z) in a.iter().zip(&c) {
            assert_ne!(x.values, z.values, "{kind} {}", x.name);
        }
    }
}

#[test]
fn initial_weights_respect_the_fan_in_bound() {
    let tensors = Model::init(ModelKind::TwoNn, 3, &flex()).to_tensors().unwrap();
    let fc1 = &tensors[0];
    assert_eq!(fc1.name, "fc1.weight");
    let bound = 1.0 / (784f32).sqrt();
    assert!(fc1.values.iter().all(|v| v.abs() <= bound));
    // Spread over the interval, not collapsed to a constant.
    let max = fc1.values.iter().cloned().fold(f32::MIN, f32::max);
    assert!(max > 0.9 * bound, "{max} vs {bound}");
}

#[test]
fn tensors_round_trip_to_identical_outputs() {
    let device = flex();
    let (input, _) = batch(4, &device);
    for kind in ModelKind::ALL {
        let model = Model::init(kind, 5, &device);
        let tensors = model.to_tensors().unwrap();
        let specs: Vec<_> = tensors.iter().map(NamedTensor::spec).collect();
        assert_eq!(specs, kind.tensor_specs(), "{kind}");
        let again = Model::from_tensors(kind, &tensors, &device).unwrap();
        assert_eq!(again.to_tensors().unwrap(), tensors, "{kind}");
        assert_eq!(outputs(&again, input.clone()), outputs(&model, input.clone()), "{kind}");
    }
}

#[test]
fn payload_round_trips_to_identical_outputs() {
    let device = flex();
    let (input, _) = batch(2, &device);
    for kind in ModelKind::ALL {
        let model = Model::init(kind, 9, &device);
        let payload = model.to_payload().unwrap();
        let again = Model::from_payload(kind, payload.bytes(), &device).unwrap();
        assert_eq!(outputs(&again, input.clone()), outputs(&model, input.clone()), "{kind}");
        // A payload for another model is refused.
        let other = if kind == ModelKind::Cnn { ModelKind::TwoNn } else { ModelKind::Cnn };
        assert!(Model::from_payload(other, payload.bytes(), &device).is_err(), "{kind} as {other}");
    }
}

#[test]
fn payload_missing_a_tensor_is_refused_naming_it() {
    let device = flex();
    let tensors: Vec<_> = Model::init(ModelKind::Cnn, 2, &device)
        .to_tensors()
        .unwrap()
        .into_iter()
        .filter(|t| t.name != "conv2.bias")
        .collect();
    let bytes = starling_protocol::UpdatePayload::encode_owned(&tensors).unwrap().into_bytes();
    let err = Model::from_payload(ModelKind::Cnn, &bytes, &device).unwrap_err();
    assert!(matches!(err, ZooError::Payload(_)), "{err}");
    assert!(err.to_string().contains("conv2.bias"), "{err}");
}

#[test]
fn linear_weights_are_in_by_out() {
    // fc.weight[i][j] is the weight from input i to output j: x · W + b.
    let device = flex();
    let mut weight = vec![0.0; INPUT_FEATURES * NUM_CLASSES];
    weight[5 * NUM_CLASSES + 3] = 1.5; // input 5 -> class 3
    let mut bias = vec![0.0; NUM_CLASSES];
    bias[7] = 0.25;
    let tensors = [
        NamedTensor::new("fc.weight", [INPUT_FEATURES, NUM_CLASSES], weight),
        NamedTensor::new("fc.bias", [NUM_CLASSES], bias),
    ];
    let model = Model::from_tensors(ModelKind::LogReg, &tensors, &device).unwrap();
    let mut x = vec![0.0; INPUT_FEATURES];
    x[5] = 2.0;
    let logits = outputs(&model, Tensor::from_data(TensorData::new(x, [1, INPUT_FEATURES]), &device));
    let mut expected = vec![0.0; NUM_CLASSES];
    expected[3] = 3.0;
    expected[7] = 0.25;
    assert_eq!(logits, expected);
}

#[test]
fn bad_weights_are_refused_naming_the_tensor() {
    let device = flex();
    let good = Model::init(ModelKind::TwoNn, 1, &device).to_tensors().unwrap();
    let load = |tensors: &[NamedTensor]| Model::from_tensors(ModelKind::TwoNn, tensors, &device).unwrap_err();

    let missing: Vec<_> = good.iter().filter(|t| t.name != "fc2.bias").cloned().collect();
    let err = load(&missing);
    assert!(matches!(&err, ZooError::MissingTensor { name } if name == "fc2.bias"), "{err}");
    assert!(err.to_string().contains("fc2.bias"));

    let mut misshapen = good.clone();
    misshapen[0].shape = vec![INPUT_FEATURES * 200];
    let err = load(&misshapen);
    assert!(
        matches!(&err, ZooError::ShapeMismatch { name, expected, found }
            if name == "fc1.weight" && expected == &[784, 200] && found == &[156_800]),
        "{err}"
    );
    assert!(err.to_string().contains("fc1.weight"));

    let mut transposed = good.clone();
    transposed[2].shape = vec![200, 200];
    transposed[4].shape = vec![10, 200];
    let err = load(&transposed);
    assert!(matches!(&err, ZooError::ShapeMismatch { name, .. } if name == "fc3.weight"), "{err}");

    let mut short = good.clone();
    short[5].values.pop();
    let err = load(&short);
    assert!(matches!(&err, ZooError::ValueCount { name, expected: 10, found: 9 } if name == "fc3.bias"), "{err}");

    let mut nan = good.clone();
    nan[3].values[17] = f32::NAN;
    let err = load(&nan);
    assert!(matches!(&err, ZooError::NonFinite { name, index: 17 } if name == "fc2.bias"), "{err}");

    let mut extra = good.clone();
    extra.push(NamedTensor::new("fc4.weight", [1], vec![0.0]));
    let err = load(&extra);
    assert!(matches!(&err, ZooError::UnexpectedTensor { name } if name == "fc4.weight"), "{err}");

    let mut duplicate = good.clone();
    duplicate.push(good[1].clone());
    let err = load(&duplicate);
    assert!(matches!(&err, ZooError::DuplicateTensor { name } if name == "fc1.bias"), "{err}");
}

#[test]
fn sgd_steps_lower_the_loss_on_a_fixed_batch() {
    let device = Device::flex().autodiff();
    for kind in ModelKind::ALL {
        let (inputs, labels) = batch(16, &device);
        let mut model = Model::init(kind, 11, &device);
        let initial = model.to_tensors().unwrap();
        let mut trainer = SgdTrainer::new(0.1);
        let mut losses = Vec::new();
        for _ in 0..10 {
            let (next, loss) = trainer.step(model, inputs.clone(), labels.clone());
            model = next;
            losses.push(loss);
        }
        let final_loss = cross_entropy(model.forward(inputs), labels).into_scalar::<f32>();
        assert!(losses.iter().all(|l| l.is_finite()), "{kind}: {losses:?}");
        losses.push(final_loss);
        assert!(losses.windows(2).all(|w| w[1] < w[0]), "{kind}: not decreasing: {losses:?}");
        assert!(final_loss < 0.9 * losses[0], "{kind}: {losses:?}");
        // Every tensor moved, and the trained weights export and reload on
        // the plain (non-autodiff) device with the same outputs.
        let trained = model.to_tensors().unwrap();
        for (before, after) in initial.iter().zip(&trained) {
            assert_ne!(before.values, after.values, "{kind} {} did not train", before.name);
        }
        let plain = Model::from_tensors(kind, &trained, &flex()).unwrap();
        let (probe, _) = batch(3, &flex());
        let (probe_ad, _) = batch(3, &device);
        assert_eq!(outputs(&plain, probe), outputs(&model, probe_ad), "{kind}");
    }
}
