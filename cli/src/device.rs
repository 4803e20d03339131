//! The `--device` flag.

use anyhow::Result;
use burn::prelude::Device;
use starling_models::device::Backend;

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DeviceArg {
    /// Where to train: flex (CPU) or wgpu (GPU; needs a build with `--features wgpu`).
    #[arg(long = "device", default_value = "flex")]
    backend: Backend,
}

impl DeviceArg {
    pub(crate) fn device(&self) -> Result<Device> {
        Ok(self.backend.device()?)
    }

    pub(crate) fn name(&self) -> String {
        self.backend.to_string()
    }
}
