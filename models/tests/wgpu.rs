//! Training on the GPU backend agrees with the CPU backend.
//!
//! Built only with `--features wgpu`; `.ci/run` runs it on Mesa's software
//! Vulkan driver (lavapipe), a developer's machine on its GPU. Tolerance:
//! after a whole local epoch (6 SGD steps) every coordinate of the update
//! agrees within 1e-4 of the update's largest coordinate, and every logit
//! of the trained model within 1e-4 in absolute terms. f32 sums in a
//! different order differ at ~1e-7 relative per operation; 1e-4 leaves room
//! for six steps of that while catching any real difference (a wrong
//! kernel is off by O(1)).
#![cfg(feature = "wgpu")]

use std::path::PathBuf;

use burn::prelude::*;
use starling_models::data::{Mnist, Verify};
use starling_models::device::Backend;
use starling_models::train::{Features, Quiet, TrainConfig, train_local};
use starling_models::zoo::{Model, ModelKind};
use starling_protocol::NamedTensor;

fn mnist_train(n: usize) -> Features {
    let dir = std::env::var_os("STARLING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist"));
    let mnist = Mnist::load(&dir, Verify::ShapeOnly).expect("MNIST");
    Features::new(&mnist.train.subset(&(0..n).collect::<Vec<_>>()))
}

fn apply(global: &[NamedTensor], delta: &[NamedTensor]) -> Vec<NamedTensor> {
    global
        .iter()
        .zip(delta)
        .map(|(g, d)| {
            NamedTensor::new(
                g.name.clone(),
                g.shape.clone(),
                g.values.iter().zip(&d.values).map(|(a, b)| a + b).collect(),
            )
        })
        .collect()
}

#[test]
fn a_local_epoch_on_wgpu_matches_flex() {
    let gpu = Backend::Wgpu.device().expect("built with wgpu");
    let cpu = Backend::Flex.device().unwrap();
    let data = mnist_train(120);
    for kind in [ModelKind::TwoNn, ModelKind::Cnn] {
        let global = Model::init(kind, 3, &cpu).to_tensors().unwrap();
        let config =
            TrainConfig { batch_size: 20, learning_rate: 0.1, momentum: 0.5, seed: 9, ..TrainConfig::default() };
        let on_cpu = train_local(kind, &global, &data, &config, &cpu, &mut Quiet).unwrap();
        let on_gpu = train_local(kind, &global, &data, &config, &gpu, &mut Quiet).unwrap();
        assert_eq!(on_gpu.steps, 6);
        let scale = on_cpu.delta.iter().flat_map(|t| &t.values).fold(0f32, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "{kind}: the update is not trivially zero");
        for (a, b) in on_cpu.delta.iter().zip(&on_gpu.delta) {
            let worst = a.values.iter().zip(&b.values).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(worst <= 1e-4 * scale, "{kind} {}: differs by {worst} (scale {scale})", a.name);
        }
        assert!((on_cpu.loss - on_gpu.loss).abs() < 1e-4, "{kind}: loss {} vs {}", on_cpu.loss, on_gpu.loss);

        let probe = Tensor::<2>::from_data(TensorData::new(vec![0.5f32; 2 * 784], [2, 784]), &cpu);
        let trained = apply(&global, &on_gpu.delta);
        let cpu_logits = Model::from_tensors(kind, &trained, &cpu).unwrap().forward(probe.clone());
        let gpu_model = Model::from_tensors(kind, &trained, &gpu).unwrap();
        let gpu_logits = gpu_model.forward(probe.to_device(&gpu));
        let (c, g) =
            (cpu_logits.into_data().try_to_vec::<f32>().unwrap(), gpu_logits.into_data().try_to_vec::<f32>().unwrap());
        for (x, y) in c.iter().zip(&g) {
            assert!((x - y).abs() < 1e-4, "{kind}: logits {c:?} vs {g:?}");
        }
    }
}
