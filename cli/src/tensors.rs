//! Reading and writing updates as safetensors files of `f32` tensors.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use safetensors::{Dtype, tensor::TensorView};
use starling_aggregation::{Layout, TensorInfo, UpdateView};
use starling_protocol::payload;

/// Refuse input files above this size (64 GiB): a typo'd path to a disk
/// image should fail fast, not exhaust memory.
const MAX_FILE: u64 = 64 << 30;

/// Largest safetensors header read (16 MiB: room for a hundred thousand tensors).
const MAX_HEADER: usize = 16 << 20;

/// One update file held in memory: the raw file in an `f32`-aligned buffer,
/// and where each of its tensors lies.
#[derive(Debug)]
pub(crate) struct UpdateFile {
    pub(crate) path: PathBuf,
    /// The file's bytes, in `u32` storage so that 4-byte-aligned offsets are
    /// `f32`-aligned in memory.
    words: Vec<u32>,
    len: usize,
    /// `(name, shape, byte range)` per tensor, in file order.
    tensors: Vec<(String, Vec<usize>, std::ops::Range<usize>)>,
}

impl UpdateFile {
    /// Reads and parses `path`; every tensor must be `f32`.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let mut words = Vec::new();
        let len = Self::read_into(path, &mut words)?;
        Self::parse(path, words, len)
    }

    /// Like [`UpdateFile::read`], reusing `self`'s buffer.
    pub(crate) fn reread(self, path: &Path) -> Result<Self> {
        let mut words = self.words;
        let len = Self::read_into(path, &mut words)?;
        Self::parse(path, words, len)
    }

    fn read_into(path: &Path, words: &mut Vec<u32>) -> Result<usize> {
        let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata()?.len();
        ensure!(len <= MAX_FILE, "{}: {len} bytes is larger than the {MAX_FILE}-byte limit", path.display());
        let len = len as usize;
        words.clear();
        words.resize(len.div_ceil(4), 0);
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(words.as_mut_slice());
        file.read_exact(&mut bytes[..len]).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(len)
    }

    fn parse(path: &Path, words: Vec<u32>, len: usize) -> Result<Self> {
        let bytes = &bytemuck::cast_slice::<u32, u8>(&words)[..len];
        // The hardened reader of the wire format: bounded header, no
        // duplicate names, F32 only, offsets checked without overflow.
        let specs = payload::inspect(bytes, MAX_HEADER)
            .map_err(|e| anyhow::anyhow!("{}: not a valid safetensors update: {e}", path.display()))?;
        let views = payload::decode_view(bytes, &specs, len).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = bytes.as_ptr() as usize;
        let tensors = views
            .iter()
            .map(|v| {
                let start = v.data().as_ptr() as usize - base;
                (v.name().to_owned(), v.shape().to_vec(), start..start + v.data().len())
            })
            .collect();
        Ok(Self { path: path.to_owned(), words, len, tensors })
    }

    /// The tensors' names and shapes, in file order.
    pub(crate) fn layout(&self) -> Result<Layout> {
        let infos = self.tensors.iter().map(|(n, s, _)| TensorInfo::new(n.clone(), s.clone())).collect();
        Layout::new(infos).with_context(|| format!("{}", self.path.display()))
    }

    /// Binds the file's tensors to `layout` as update number `client`.
    ///
    /// Tensors whose data is not 4-byte aligned in the file (a header length
    /// that is not a multiple of 4; our writer always pads) are copied into
    /// `scratch` first.
    pub(crate) fn view<'a>(
        &'a self,
        layout: &Layout,
        client: usize,
        scratch: &'a mut Vec<Vec<f32>>,
    ) -> Result<UpdateView<'a>> {
        let bytes = &bytemuck::cast_slice::<u32, u8>(&self.words)[..self.len];
        scratch.clear();
        let mut aligned = Vec::with_capacity(self.tensors.len());
        for (_, _, range) in &self.tensors {
            match bytemuck::try_cast_slice::<u8, f32>(&bytes[range.clone()]) {
                Ok(values) => aligned.push(Some(values)),
                Err(_) => {
                    let values =
                        bytes[range.clone()].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()));
                    scratch.push(values.collect());
                    aligned.push(None);
                }
            }
        }
        let mut copies = scratch.iter();
        let named = self.tensors.iter().zip(aligned).map(|((name, shape, _), values)| {
            let values = values.unwrap_or_else(|| copies.next().expect("one copy per unaligned tensor"));
            (name.as_str(), shape.as_slice(), values)
        });
        layout.bind(client, named).with_context(|| format!("{}", self.path.display()))
    }
}

#[cfg(target_endian = "big")]
compile_error!("update files are little-endian f32; big-endian hosts need a byte-swapping reader");

/// Writes `model` (flat, laid out by `layout`) to `path` as safetensors,
/// atomically: a temporary file in the same directory, renamed into place.
pub(crate) fn write(path: &Path, layout: &Layout, model: &[f32], metadata: HashMap<String, String>) -> Result<()> {
    let views = layout
        .split(model)
        .map(|(t, values)| {
            let view = TensorView::new(Dtype::F32, t.shape.clone(), bytemuck::cast_slice(values))?;
            Ok((t.name.clone(), view))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let bytes = safetensors::serialize(views, Some(metadata))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("output")));
    let mut file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
