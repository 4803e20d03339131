//! Local training speed in samples per second, for `bench/train_compare.sh`
//! (which runs PyTorch on the same model, data, batch size and threads in
//! the same run).
//!
//! ```text
//! cargo run --release -p starling-models --example train_speed -- 2nn 10 600 5
//! ```
//! Arguments: model, batch size, samples per epoch, repetitions. Prints one
//! JSON line with the best and median samples per second over the
//! repetitions (each one epoch of SGD over the first `samples` MNIST
//! training images, after one untimed warm-up epoch).

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::Device;
use starling_models::data::{Mnist, Verify};
use starling_models::train::{Features, Quiet, TrainConfig, train_local};
use starling_models::zoo::{Model, ModelKind};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let kind: ModelKind = arg(0, "2nn").parse().expect("model: logreg, 2nn or cnn");
    let batch: usize = arg(1, "10").parse().expect("batch size");
    let samples: usize = arg(2, "600").parse().expect("samples");
    let reps: usize = arg(3, "5").parse().expect("repetitions");
    let dir = std::env::var_os("STARLING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist"));
    let mnist = Mnist::load(&dir, Verify::ShapeOnly).expect("MNIST (set STARLING_DATA)");
    let data = Features::new(&mnist.train.subset(&(0..samples).collect::<Vec<_>>()));
    let device = Device::flex();
    let global = Model::init(kind, 1, &device).to_tensors().expect("weights");
    let config = TrainConfig { batch_size: batch, learning_rate: 0.01, ..TrainConfig::default() };
    let epoch = || {
        let started = Instant::now();
        train_local(kind, &global, &data, &config, &device, &mut Quiet).expect("training runs");
        samples as f64 / started.elapsed().as_secs_f64()
    };
    epoch();
    let mut rates: Vec<f64> = (0..reps).map(|_| epoch()).collect();
    rates.sort_by(f64::total_cmp);
    println!(
        "{{\"framework\": \"starling-burn-flex\", \"model\": \"{kind}\", \"batch\": {batch}, \"samples\": {samples}, \"best\": {:.1}, \"median\": {:.1}}}",
        rates[reps - 1],
        rates[reps / 2]
    );
}
