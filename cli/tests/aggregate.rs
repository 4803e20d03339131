//! `starling aggregate` end to end: real files in, real files out, and a
//! clear error for every kind of bad input.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

fn write(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, v)| (n.to_string(), TensorView::new(Dtype::F32, s.clone(), bytemuck::cast_slice(v)).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None::<HashMap<String, String>>, path).unwrap();
}

fn read(path: &Path) -> HashMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()))
        .collect()
}

fn starling(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_starling")).args(args).output().unwrap()
}

/// Five clients on a line: x = 0, 1, 2, 3, 100 in tensor `w` (shape [2]:
/// [x, −x]) and `b` = [x].
fn five(dir: &Path) -> Vec<PathBuf> {
    [0.0f32, 1.0, 2.0, 3.0, 100.0]
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let p = dir.join(format!("c{i}.safetensors"));
            write(&p, &[("w", vec![2], vec![x, -x]), ("b", vec![1], vec![x])]);
            p
        })
        .collect()
}

fn run_rule(dir: &Path, inputs: &[PathBuf], extra: &[&str]) -> HashMap<String, Vec<f32>> {
    let out = dir.join("out.safetensors");
    let mut args = vec!["aggregate", "--output", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let o = starling(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    read(&out)
}

#[test]
fn every_rule_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = five(dir.path());
    let d = dir.path();
    // FedAvg weighted 1,1,1,1,6: (0+1+2+3+600)/10 = 60.6.
    let got = run_rule(d, &inputs, &["--rule", "fedavg", "--weights", "1,1,1,1,6"]);
    let close = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
    assert!(close(&got["b"], &[60.6]), "{got:?}");
    assert!(close(&got["w"], &[60.6, -60.6]), "{got:?}");
    assert_eq!(run_rule(d, &inputs, &["--rule", "median"])["b"], [2.0]);
    // β = 0.2 cuts one from each end: mean(1, 2, 3) = 2.
    assert_eq!(run_rule(d, &inputs, &["--rule", "trimmed-mean", "--beta", "0.2"])["w"], [2.0, -2.0]);
    // Krum with f = 1 picks x = 1 (see the aggregation crate's worked example, here in 2·x² + x² units).
    assert_eq!(run_rule(d, &inputs, &["--rule", "krum", "--byzantine", "1"])["b"], [1.0]);
    assert_eq!(run_rule(d, &inputs, &["--rule", "multi-krum", "--byzantine", "1", "--select", "2"])["b"], [1.5]);
}

#[test]
fn json_report_and_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = five(dir.path());
    let out = dir.path().join("o.safetensors");
    let mut args = vec!["aggregate", "--rule", "krum", "--repeat", "3", "--json", "-o", out.to_str().unwrap()];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let o = starling(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["rule"], "krum");
    assert_eq!(report["clients"], 5);
    assert_eq!(report["parameters"], 3);
    assert_eq!(report["input_bytes"], 60);
    assert_eq!(report["selected"], serde_json::json!([1]));
    assert!(report["seconds"].as_f64().unwrap() <= report["seconds_median"].as_f64().unwrap());
}

fn expect_error(args: &[&str], needle: &str) {
    let o = starling(args);
    assert!(!o.status.success(), "expected failure for {args:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "stderr for {args:?} lacks {needle:?}:\n{err}");
}

#[test]
fn bad_inputs_are_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = d.join("good.safetensors");
    write(&good, &[("w", vec![2], vec![1.0, 2.0]), ("b", vec![1], vec![3.0])]);
    let nan = d.join("nan.safetensors");
    write(&nan, &[("w", vec![2], vec![1.0, f32::NAN]), ("b", vec![1], vec![3.0])]);
    let shape = d.join("shape.safetensors");
    write(&shape, &[("w", vec![1, 2], vec![1.0, 2.0]), ("b", vec![1], vec![3.0])]);
    let extra = d.join("extra.safetensors");
    write(&extra, &[("w", vec![2], vec![1.0, 2.0]), ("b", vec![1], vec![3.0]), ("z", vec![1], vec![0.0])]);
    let missing = d.join("missing.safetensors");
    write(&missing, &[("w", vec![2], vec![1.0, 2.0])]);
    let junk = d.join("junk.safetensors");
    std::fs::write(&junk, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a header").unwrap();
    let hostile = d.join("hostile.safetensors");
    let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551615,7]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 8]);
    std::fs::write(&hostile, bytes).unwrap();
    let f16 = d.join("f16.safetensors");
    let halves = [0u8; 4];
    safetensors::serialize_to_file(
        [("w", TensorView::new(Dtype::F16, vec![2], &halves).unwrap())],
        None::<HashMap<String, String>>,
        &f16,
    )
    .unwrap();

    let out = d.join("out.safetensors");
    let o = out.to_str().unwrap();
    let g = good.to_str().unwrap();
    expect_error(
        &["aggregate", "-o", o, g, nan.to_str().unwrap()],
        "nan.safetensors: tensor \"w\" has non-finite value NaN at element 1",
    );
    expect_error(&["aggregate", "--rule", "median", "-o", o, g, nan.to_str().unwrap()], "non-finite");
    expect_error(
        &["aggregate", "-o", o, g, shape.to_str().unwrap()],
        "shape.safetensors: update 1: tensor `w` has shape [1, 2], expected [2]",
    );
    expect_error(
        &["aggregate", "-o", o, g, extra.to_str().unwrap()],
        "extra.safetensors: update 1: unknown tensor `z`",
    );
    expect_error(
        &["aggregate", "-o", o, g, missing.to_str().unwrap()],
        "missing.safetensors: update 1: missing tensor `b`",
    );
    expect_error(
        &["aggregate", "-o", o, g, junk.to_str().unwrap()],
        "junk.safetensors: not a valid safetensors update",
    );
    expect_error(
        &["aggregate", "-o", o, g, hostile.to_str().unwrap()],
        "hostile.safetensors: tensor \"w\" has data offsets",
    );
    expect_error(&["aggregate", "-o", o, f16.to_str().unwrap()], "tensor \"w\" has dtype F16, expected F32");
    expect_error(&["aggregate", "-o", o, g, d.join("absent").to_str().unwrap()], "cannot open");
    expect_error(&["aggregate", "--weights", "1,2,3", "-o", o, g, g], "3 weights given for 2 inputs");
    expect_error(&["aggregate", "--weights", "0,0", "-o", o, g, g], "total weight of the updates is zero");
    expect_error(&["aggregate", "--weights=-1,2", "-o", o, g, g], "weight -1");
    expect_error(
        &["aggregate", "--rule", "krum", "--byzantine", "1", "-o", o, g, g, g, g],
        "needs at least 5 inputs, got 4",
    );
    expect_error(&["aggregate", "--rule", "bulyan", "--byzantine", "1", "-o", o, g, g, g, g, g, g], "at least 7");
    expect_error(&["aggregate", "--rule", "trimmed-mean", "--beta", "0.5", "-o", o, g, g], "trim fraction");
    assert!(!out.exists(), "a failed run must not leave an output file");
}

#[test]
fn the_demo_runs_and_the_robust_rules_beat_fedavg() {
    let o = starling(&["aggregate", "--demo", "--clients", "7", "--attackers", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let error_of = |rule: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(rule)).unwrap_or_else(|| panic!("no {rule} row:\n{text}"));
        let pct = line.split_whitespace().find(|w| w.ends_with('%')).unwrap();
        pct.trim_end_matches('%').parse().unwrap()
    };
    // The attacker drags FedAvg far off; every robust rule stays near the truth.
    assert!(error_of("fedavg ") > 100.0, "{text}");
    for rule in ["median", "trimmed-mean", "krum ", "multi-krum", "bulyan"] {
        assert!(error_of(rule) < 60.0, "{rule}:\n{text}");
    }
}

#[test]
fn dp_fedavg_clips_adds_seeded_noise_and_refuses_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inputs = five(d);
    // Clip to 1: x = 0 stays, every other update (norm √3·x) scales to norm 1,
    // so b = x / (√3·x) = 1/√3 for the four non-zero updates. σ = 0: no noise.
    let got = run_rule(d, &inputs, &["--clip", "1", "--noise-multiplier", "0"]);
    let want = 4.0 / 3f32.sqrt() / 5.0;
    assert!((got["b"][0] - want).abs() < 1e-6, "{got:?}");

    let noisy = |seed: &str| run_rule(d, &inputs, &["--clip", "1", "--noise-multiplier", "1", "--noise-seed", seed]);
    let (a, b, c) = (noisy("7"), noisy("7"), noisy("8"));
    assert_eq!(a, b, "same seed, same noise");
    assert_ne!(a, c, "another seed, other noise");
    assert_ne!(a["b"][0], want, "σ = 1 adds noise");

    let out = d.join("o.safetensors");
    let i0 = inputs[0].to_str().unwrap();
    let o = out.to_str().unwrap();
    expect_error(&["aggregate", "--noise-multiplier", "1", "-o", o, i0], "--clip");
    expect_error(
        &["aggregate", "--clip", "1", "--noise-multiplier", "1", "--weights", "3", "-o", o, i0],
        "drop --weights",
    );
    expect_error(
        &["aggregate", "--rule", "median", "--clip", "1", "--noise-multiplier", "1", "-o", o, i0],
        "fedavg only",
    );
    expect_error(&["aggregate", "--clip", "1", "--noise-multiplier=-1", "-o", o, i0], "noise_multiplier");
}
