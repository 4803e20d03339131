//! Where models run: the CPU `flex` backend by default, a GPU through
//! `wgpu` when this crate is built with the `wgpu` feature.

use std::fmt;
use std::str::FromStr;

use burn::prelude::Device;

/// A compute backend, by the name the command line uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// burn's portable CPU backend (SIMD, multi-threaded).
    #[default]
    Flex,
    /// The default GPU adapter through wgpu (Vulkan, Metal, DX12 or a
    /// software driver such as Mesa's lavapipe).
    Wgpu,
}

/// Why a backend cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The backend's name is not known.
    #[error("unknown device `{0}`: use flex or wgpu")]
    Unknown(String),
    /// The backend was not compiled in.
    #[error(
        "this build has no `{0}` backend: rebuild with `--features {0}` (e.g. `cargo run --release --features wgpu -- …`)"
    )]
    NotBuilt(&'static str),
}

impl Backend {
    /// The backend's name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
        }
    }

    /// Whether this build can run the backend.
    pub fn available(self) -> bool {
        match self {
            Backend::Flex => true,
            Backend::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The backend's default device (without autodiff; training adds it).
    pub fn device(self) -> Result<Device, DeviceError> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(not(feature = "wgpu"))]
            Backend::Wgpu => Err(DeviceError::NotBuilt("wgpu")),
        }
    }
}

impl FromStr for Backend {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flex" | "cpu" => Ok(Backend::Flex),
            "wgpu" | "gpu" => Ok(Backend::Wgpu),
            other => Err(DeviceError::Unknown(other.to_owned())),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_the_cpu_always_works() {
        assert_eq!("flex".parse::<Backend>().unwrap(), Backend::Flex);
        assert_eq!("gpu".parse::<Backend>().unwrap(), Backend::Wgpu);
        assert!(matches!("tpu".parse::<Backend>(), Err(DeviceError::Unknown(_))));
        assert!(Backend::Flex.device().is_ok());
        assert_eq!(Backend::Wgpu.device().is_ok(), cfg!(feature = "wgpu"));
    }
}
