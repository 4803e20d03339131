//! The streaming FedAvg accumulator's promise: memory stays at one model for
//! the sum (plus the caller's update buffer), whatever the number of clients.
//!
//! Measured as the growth of the process's peak resident set (VmHWM, reset
//! through /proc/self/clear_refs), so it is Linux-only. This is the only test
//! in its binary, so no other test's allocations mix in.

#![cfg(target_os = "linux")]

use starling_aggregation::{FedAvg, Layout, TensorInfo};

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

fn reset_peak() {
    // "5" resets VmHWM to the current RSS (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// Peak RSS growth while streaming `clients` updates of `layout`'s size.
fn streaming_peak(layout: &Layout, clients: usize) -> (u64, Vec<f32>) {
    // Touch the update buffer's pages before measuring: it is the caller's.
    let mut update = vec![-1.0f32; layout.numel()];
    reset_peak();
    let base = peak_rss_bytes();
    let mut acc = FedAvg::new(layout);
    for k in 0..clients {
        // Each client's update: every value k; weight 1.
        update.fill(k as f32);
        update[k % layout.numel()] += 1.0;
        let view = layout.view_flat(k, &update).unwrap();
        acc.add(k, &view, 1.0).unwrap();
    }
    let avg = acc.finish().unwrap();
    (peak_rss_bytes().saturating_sub(base), avg)
}

#[test]
fn peak_memory_does_not_grow_with_the_number_of_clients() {
    // The MNIST CNN's size: 1,663,370 parameters, 6.65 MB per model.
    let layout = Layout::new(vec![TensorInfo::new("w", [1_663_370])]).unwrap();
    let model_bytes = layout.numel() as u64 * 4;

    let (few, _) = streaming_peak(&layout, 10);
    let (many, avg) = streaming_peak(&layout, 150);

    // The result is right: mean of 0..150 is 74.5, plus 1/150 at indices 0..150.
    assert!((avg[0] - (74.5 + 1.0 / 150.0)).abs() < 1e-3, "{}", avg[0]);
    assert!((avg[200] - 74.5).abs() < 1e-3, "{}", avg[200]);

    // The update buffer belongs to the caller and exists before measuring:
    // what grows is the accumulator's one model. Allow half a model more for
    // thread stacks and allocator slack; a copy per client (1 GB for 150),
    // or even one extra model, is beyond that.
    let bound = model_bytes * 3 / 2;
    assert!(few <= bound, "10 clients: peak grew by {few} bytes, bound {bound}");
    assert!(many <= bound, "150 clients: peak grew by {many} bytes, bound {bound}");
    eprintln!("peak RSS growth: {few} B for 10 clients, {many} B for 150; one model is {model_bytes} B");
}
