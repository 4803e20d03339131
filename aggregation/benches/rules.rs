//! Throughput of every rule on the workloads of the foundation issue:
//! 10 and 100 clients × the FedAvg paper's MNIST CNN (1,663,370 parameters)
//! and 10 clients × 25M parameters. Criterion reports GB/s of client input.
//!
//! `cargo bench -p starling-aggregation` runs all of them;
//! `cargo bench -p starling-aggregation -- 10x1.66M` one workload.
//! The side-by-side comparison with Flower is `bench/flower_compare.sh`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use starling_aggregation::{FedAvg, Inputs, Layout, Rule, TensorInfo, aggregate_into};

fn cnn() -> Layout {
    Layout::new(vec![
        TensorInfo::new("conv1.weight", [32, 1, 5, 5]),
        TensorInfo::new("conv1.bias", [32]),
        TensorInfo::new("conv2.weight", [64, 32, 5, 5]),
        TensorInfo::new("conv2.bias", [64]),
        TensorInfo::new("fc1.weight", [512, 3136]),
        TensorInfo::new("fc1.bias", [512]),
        TensorInfo::new("fc2.weight", [10, 512]),
        TensorInfo::new("fc2.bias", [10]),
    ])
    .unwrap()
}

fn large() -> Layout {
    // 25,000,000 parameters: four 2500×2500 matrices = 25M exactly.
    Layout::new((0..4).map(|i| TensorInfo::new(format!("layer{i}.weight"), [2500, 2500])).collect()).unwrap()
}

/// Seeded pseudo-random updates with values of a typical update's scale.
fn updates(n: usize, d: usize) -> Vec<Vec<f32>> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            (0..d)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02
                })
                .collect()
        })
        .collect()
}

fn bench_workload(c: &mut Criterion, name: &str, layout: &Layout, n: usize, rules: &[Rule]) {
    let data = updates(n, layout.numel());
    let views: Vec<_> = data.iter().enumerate().map(|(i, u)| layout.view_flat(i, u).unwrap()).collect();
    let weights: Vec<f64> = (0..n).map(|i| 100.0 + (i * 37 % 900) as f64).collect();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes((n * layout.numel() * 4) as u64));
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));

    // The streaming accumulator as a coordinator uses it: one update at a
    // time, each checked for NaN/Inf before it is added.
    group.bench_function("fedavg-streaming", |b| {
        b.iter(|| {
            let mut acc = FedAvg::new(layout);
            for (i, v) in views.iter().enumerate() {
                acc.add(i, v, weights[i]).unwrap();
            }
            black_box(acc.finish().unwrap())
        })
    });
    for rule in rules {
        // As a server runs them round after round: the output buffer is reused.
        let mut buffer = Vec::new();
        group.bench_with_input(BenchmarkId::from_parameter(rule.name()), rule, |b, rule| {
            b.iter(|| {
                let inputs = Inputs::new(layout, views.clone(), weights.clone()).unwrap();
                let out = aggregate_into(rule, &inputs, std::mem::take(&mut buffer)).unwrap();
                buffer = black_box(out.model);
            })
        });
    }
    group.finish();
}

fn all(c: &mut Criterion) {
    let cnn = cnn();
    let robust = |f: usize, n: usize| {
        vec![
            Rule::FedAvg,
            Rule::Median,
            Rule::TrimmedMean { beta: 0.2 },
            Rule::Krum { byzantine: f },
            Rule::MultiKrum { byzantine: f, select: n / 2 },
            Rule::Bulyan { byzantine: (n - 3) / 4 / if n > 20 { 2 } else { 1 } },
        ]
    };
    bench_workload(c, "10x1.66M", &cnn, 10, &robust(2, 10));
    bench_workload(c, "100x1.66M", &cnn, 100, &robust(10, 100));
    bench_workload(c, "10x25M", &large(), 10, &robust(2, 10));
}

criterion_group!(benches, all);
criterion_main!(benches);
