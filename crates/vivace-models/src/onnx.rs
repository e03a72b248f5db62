//! Reading the weights out of an ONNX file, without running its graph.
//!
//! Piper voices ship as ONNX exports of a PyTorch VITS model. We only need the
//! parameters: the graph's initializers (and `Constant` nodes holding tensors),
//! decoded from protobuf with a hand-written subset of the
//! [ONNX schema](https://github.com/onnx/onnx/blob/main/onnx/onnx.proto) and
//! turned into candle tensors under their PyTorch parameter names.
//!
//! The exporter keeps parameter names for most tensors (`enc_p.emb.weight`), but
//! tensors it computed at export time (weight norm folded into a convolution)
//! get anonymous names such as `onnx::Conv_1234`. Those are renamed through the
//! node that consumes them: input 1 of `/flow/flows.6/enc/in_layers.0/Conv`
//! becomes `flow.flows.6.enc.in_layers.0.weight`, input 2 its `bias`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// The subset of `onnx.proto` that holds weights and node wiring.
mod proto {
    /// `ModelProto`: the file's root message.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetIdProto>,
    }

    /// `OperatorSetIdProto`: which operator set version the graph uses.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetIdProto {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    /// `GraphProto`: nodes and the initializers they read.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
    }

    /// `NodeProto`: one operator call.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<AttributeProto>,
    }

    /// `AttributeProto`: a node attribute (only the kinds we read).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttributeProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(float, tag = "2")]
        pub f: f32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(bytes = "vec", tag = "4")]
        pub s: Vec<u8>,
        #[prost(message, optional, tag = "5")]
        pub t: Option<TensorProto>,
        #[prost(float, repeated, tag = "7")]
        pub floats: Vec<f32>,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        #[prost(bytes = "vec", repeated, tag = "9")]
        pub strings: Vec<Vec<u8>>,
    }

    /// `TensorProto`: a named tensor, its data raw or typed.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        #[prost(int32, repeated, tag = "5")]
        pub int32_data: Vec<i32>,
        #[prost(int64, repeated, tag = "7")]
        pub int64_data: Vec<i64>,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "bytes", tag = "9")]
        pub raw_data: bytes::Bytes,
        #[prost(int32, tag = "14")]
        pub data_location: i32,
    }
}

/// ONNX `TensorProto.DataType` codes we can read.
const ONNX_FLOAT: i32 = 1;
const ONNX_INT32: i32 = 6;
const ONNX_INT64: i32 = 7;
const ONNX_FLOAT16: i32 = 10;
const ONNX_DOUBLE: i32 = 11;

/// Decodes a model's protobuf: its graph and default-domain opset.
fn decode(path: &Path, bytes: bytes::Bytes) -> Result<(proto::GraphProto, i64)> {
    use prost::Message;
    let corrupt = |reason: String| Error::CorruptOnnx {
        path: path.to_path_buf(),
        reason,
    };
    let model = proto::ModelProto::decode(bytes).map_err(|e| {
        corrupt(format!(
            "not a valid ONNX protobuf ({e}); the file may be truncated"
        ))
    })?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(0, |o| o.version);
    let graph = model
        .graph
        .ok_or_else(|| corrupt("the model has no graph".into()))?;
    Ok((graph, opset))
}

/// The integer attributes of one node (`kernel_shape`, `dilations`, `pads`, `group`…).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeAttributes {
    /// The node's operator (`Conv`, `ConvTranspose`…).
    pub op_type: String,
    /// Integer-list attributes by name; a scalar integer is a one-element list.
    pub ints: HashMap<String, Vec<i64>>,
}

impl NodeAttributes {
    /// The integer list called `name`, if the node has it.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        self.ints.get(name).map(Vec::as_slice)
    }
}

/// The weights of an ONNX file under PyTorch parameter names, plus the
/// attributes of the nodes that use them (to recover hyper-parameters that
/// the weights' shapes alone do not tell, such as dilations and strides).
#[derive(Debug)]
pub struct OnnxWeights {
    /// The file the weights came from, for error messages.
    pub path: PathBuf,
    /// Tensors by PyTorch parameter name (`dec.ups.0.weight`).
    pub tensors: HashMap<String, Tensor>,
    /// Attributes of each parameterised node, by module path (`dec.ups.0`).
    pub nodes: HashMap<String, NodeAttributes>,
    /// The model's default-domain operator set version.
    pub opset: i64,
}

impl OnnxWeights {
    /// Reads every initializer of `path` onto `device`, floats converted to `dtype`.
    pub fn read(path: &Path, device: &Device, dtype: DType) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // Decoding from `Bytes` lets every tensor's raw data borrow the file
        // buffer instead of copying it (the load's peak memory is one file
        // plus the tensors, not two files plus the tensors).
        Self::from_bytes(path, bytes::Bytes::from(bytes), device, dtype)
    }

    /// Decodes an ONNX model already in memory; `path` is only used in messages.
    pub fn from_bytes(
        path: &Path,
        bytes: bytes::Bytes,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let corrupt = |reason: String| Error::CorruptOnnx {
            path: path.to_path_buf(),
            reason,
        };
        let (graph, opset) = decode(path, bytes)?;

        // Which node (and input slot) consumes each value, and each Constant's tensor.
        let mut consumers: HashMap<&str, (&proto::NodeProto, usize)> = HashMap::new();
        let mut constants = Vec::new();
        for node in &graph.node {
            for (slot, input) in node.input.iter().enumerate() {
                consumers.entry(input.as_str()).or_insert((node, slot));
            }
            if node.op_type == "Constant" {
                if let (Some(out), Some(t)) = (
                    node.output.first(),
                    node.attribute
                        .iter()
                        .find(|a| a.name == "value")
                        .and_then(|a| a.t.as_ref()),
                ) {
                    constants.push((out.as_str(), t));
                }
            }
        }

        let mut tensors = HashMap::new();
        let mut nodes = HashMap::new();
        let named = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .chain(constants);
        for (value_name, tensor) in named {
            let consumer = consumers.get(value_name).copied();
            let name = match parameter_name(value_name, consumer, tensor.data_type) {
                Some(name) => name,
                None => continue, // a graph constant that no parameterised node reads
            };
            if let Some((node, _)) = consumer {
                if let Some(module) = module_path(&node.name) {
                    nodes.entry(module).or_insert_with(|| attributes(node));
                }
            }
            let t = to_tensor(tensor, device, dtype)
                .map_err(|reason| corrupt(format!("tensor `{value_name}` ({name}): {reason}")))?;
            tensors.insert(name, t);
        }
        if tensors.is_empty() {
            return Err(corrupt("the graph has no weights".into()));
        }
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
            nodes,
            opset,
        })
    }
}

impl OnnxWeights {
    /// The f32 values of tensor `name`, checked to have shape `dims`;
    /// `model` names the file's model in the error when it is missing.
    pub fn values(&self, name: &str, dims: &[usize], model: &str) -> Result<Vec<f32>> {
        let bad = |reason: String| Error::CorruptOnnx {
            path: self.path.clone(),
            reason,
        };
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| bad(format!("no tensor `{name}`: not {model}")))?;
        if t.dims() != dims {
            return Err(bad(format!(
                "`{name}` is {:?}, expected {dims:?}",
                t.dims()
            )));
        }
        t.flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| bad(format!("`{name}`: {e}")))
    }
}

/// `/flow/flows.6/enc/in_layers.0/Conv` → `flow.flows.6.enc.in_layers.0`.
fn module_path(node_name: &str) -> Option<String> {
    let trimmed = node_name.strip_prefix('/')?;
    let (module, _op) = trimmed.rsplit_once('/')?;
    Some(module.replace('/', "."))
}

/// The PyTorch name of a graph value, or `None` for graph plumbing (shapes,
/// axes, scalar constants):
/// - a dotted name that is not an anonymous export name is kept (`dec.ups.0.weight`);
/// - otherwise it is named after the node that reads it: input 1 of a
///   convolution or matrix product is its `weight`, input 2 its `bias`, input 0 of
///   a `Gather` an embedding `weight` (exports sometimes name that one after a
///   graph input, as Piper's `sid`), input 0 of an `Exp` node `M/Exp` is
///   `M.Exp_input`;
/// - any other initializer with a plain name keeps it (`hint_scale`);
/// - a float tensor folded at export time (`/dp/flows.0/Exp_output_0`) is named
///   after the module and operator that produced it (`dp.flows.0.Exp`).
fn parameter_name(
    value: &str,
    consumer: Option<(&proto::NodeProto, usize)>,
    data_type: i32,
) -> Option<String> {
    let anonymous = value.starts_with("onnx::") || value.starts_with('/');
    if !anonymous && value.contains('.') {
        return Some(value.to_string());
    }
    if let Some((node, slot)) = consumer {
        let suffix = match (node.op_type.as_str(), slot) {
            ("Conv" | "ConvTranspose" | "Gemm" | "MatMul", 1) => Some("weight"),
            ("Conv" | "ConvTranspose" | "Gemm", 2) => Some("bias"),
            ("Gather", 0) => Some("weight"),
            // Recurrent layers: ONNX's input, recurrence and bias tensors.
            ("GRU" | "LSTM" | "RNN", 1) => Some("W"),
            ("GRU" | "LSTM" | "RNN", 2) => Some("R"),
            ("GRU" | "LSTM" | "RNN", 3) => Some("B"),
            // An un-simplified export keeps `exp(x)` of a parameter as a node
            // reading an anonymous tensor: name it after that node.
            ("Exp", 0) => Some("Exp_input"),
            _ => None,
        };
        if let (Some(suffix), Some(module)) = (suffix, module_path(&node.name)) {
            return Some(format!("{module}.{suffix}"));
        }
    }
    if !anonymous {
        // A plainly named initializer no rule renames (`hint_scale`).
        return Some(value.to_string());
    }
    let folded = value.strip_suffix("_output_0")?;
    let (module, op) = folded.strip_prefix('/')?.rsplit_once('/')?;
    let plumbing = ["Constant", "Cast", "Shape", "Mul", "ConstantOfShape"];
    if data_type != ONNX_FLOAT || plumbing.iter().any(|p| op.starts_with(p)) {
        return None;
    }
    Some(format!("{}.{op}", module.replace('/', ".")))
}

fn attributes(node: &proto::NodeProto) -> NodeAttributes {
    let ints = node
        .attribute
        .iter()
        .map(|a| {
            let v = if a.ints.is_empty() {
                vec![a.i]
            } else {
                a.ints.clone()
            };
            (a.name.clone(), v)
        })
        .collect();
    NodeAttributes {
        op_type: node.op_type.clone(),
        ints,
    }
}

fn to_tensor(
    t: &proto::TensorProto,
    device: &Device,
    dtype: DType,
) -> std::result::Result<Tensor, String> {
    if t.data_location == 1 {
        return Err("stored as external data, which is not supported".into());
    }
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let count: usize = dims.iter().product();
    let raw = &t.raw_data;
    let check = |have: usize| {
        if have == count {
            Ok(())
        } else {
            Err(format!("shape {dims:?} needs {count} values, found {have}"))
        }
    };
    let tensor = match t.data_type {
        ONNX_FLOAT => {
            let values: Vec<f32> = if raw.is_empty() {
                t.float_data.clone()
            } else {
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            check(values.len())?;
            Tensor::from_vec(values, dims, device)
        }
        ONNX_FLOAT16 => {
            let values: Vec<f32> = raw
                .chunks_exact(2)
                .map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect();
            check(values.len())?;
            Tensor::from_vec(values, dims, device)
        }
        ONNX_DOUBLE => {
            let values: Vec<f64> = raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            check(values.len())?;
            Tensor::from_vec(values, dims, device)
        }
        ONNX_INT64 => {
            let values: Vec<i64> = if raw.is_empty() {
                t.int64_data.clone()
            } else {
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect()
            };
            check(values.len())?;
            return Tensor::from_vec(values, dims, device).map_err(|e| e.to_string());
        }
        ONNX_INT32 => {
            let values: Vec<i64> = if raw.is_empty() {
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            } else {
                raw.chunks_exact(4)
                    .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect()
            };
            check(values.len())?;
            return Tensor::from_vec(values, dims, device).map_err(|e| e.to_string());
        }
        other => return Err(format!("unsupported ONNX data type {other}")),
    };
    tensor
        .and_then(|t| t.to_dtype(dtype))
        .map_err(|e| e.to_string())
}

/// IEEE 754 half precision to f32 (ONNX float16 initializers).
fn half_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise the mantissa.
            let shift = m.leading_zeros() - 21;
            let m = (m << shift) & 0x3ff;
            sign | ((113 - shift) << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_path_strips_op() {
        assert_eq!(
            module_path("/flow/flows.6/enc/in_layers.0/Conv").as_deref(),
            Some("flow.flows.6.enc.in_layers.0")
        );
        assert_eq!(module_path("Conv_12"), None);
    }

    #[test]
    fn half_conversion_matches_known_values() {
        // Values from numpy: np.float16(x).view(np.uint16)
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x3555), 0.333_251_95);
        assert_eq!(half_to_f32(0x0001), 5.960_464_5e-8);
        assert!(half_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn truncated_file_is_an_error_naming_it() {
        let err = OnnxWeights::from_bytes(
            Path::new("voice.onnx"),
            bytes::Bytes::from_static(&[0x3a, 0xff, 0xff]),
            &Device::Cpu,
            DType::F32,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("voice.onnx"), "{msg}");
    }
}

/// ONNX's 8-bit integer codes (quantized weights and zero points).
const ONNX_UINT8: i32 = 2;
const ONNX_INT8: i32 = 3;

/// One node of a graph: what it computes and which values it reads.
#[derive(Debug, Clone)]
pub struct GraphNode {
    /// Its name (`/encoder/bert/.../MatMul_quant`).
    pub name: String,
    /// The operator (`MatMulInteger`).
    pub op_type: String,
    /// Input value names, in slot order (`""` for an absent optional one).
    pub inputs: Vec<String>,
    /// Output value names.
    pub outputs: Vec<String>,
    /// Its attributes by name (the ONNX-ML operators' tables live here).
    pub attributes: HashMap<String, Attribute>,
}

/// A node attribute's values: each list holds what the attribute stores of
/// that kind (a single `i`, `f` or `s` as a one-element list).
#[derive(Debug, Clone, Default)]
pub struct Attribute {
    /// Integers (`ints`, or `i`).
    pub ints: Vec<i64>,
    /// Floats (`floats`, or `f`).
    pub floats: Vec<f32>,
    /// Strings as bytes (`strings`, or `s`).
    pub strings: Vec<Vec<u8>>,
}

impl GraphNode {
    /// An attribute by name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.get(name)
    }
}

fn attribute(a: &proto::AttributeProto) -> Attribute {
    let one_or_many = |many: &[i64], one: i64| {
        if many.is_empty() && one != 0 {
            vec![one]
        } else {
            many.to_vec()
        }
    };
    Attribute {
        ints: one_or_many(&a.ints, a.i),
        floats: if a.floats.is_empty() && a.f != 0.0 {
            vec![a.f]
        } else {
            a.floats.clone()
        },
        strings: if a.strings.is_empty() && !a.s.is_empty() {
            vec![a.s.clone()]
        } else {
            a.strings.clone()
        },
    }
}

/// An ONNX file's nodes and raw initializers, for loaders that need the
/// wiring (quantized exports, where a weight's scale and zero point are
/// found through the node that reads it).
pub struct OnnxGraph {
    /// The file, for messages.
    pub path: PathBuf,
    /// The nodes in graph order.
    pub nodes: Vec<GraphNode>,
    initializers: HashMap<String, proto::TensorProto>,
}

impl OnnxGraph {
    /// Reads and decodes `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (graph, _) = decode(path, bytes::Bytes::from(bytes))?;
        let nodes = graph
            .node
            .iter()
            .map(|n| GraphNode {
                name: n.name.clone(),
                op_type: n.op_type.clone(),
                inputs: n.input.clone(),
                outputs: n.output.clone(),
                attributes: n
                    .attribute
                    .iter()
                    .map(|a| (a.name.clone(), attribute(a)))
                    .collect(),
            })
            .collect();
        let initializers = graph
            .initializer
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            nodes,
            initializers,
        })
    }

    /// The node called `name`, if it runs `op_type`.
    pub fn node(&self, name: &str, op_type: &str) -> Result<&GraphNode> {
        self.nodes
            .iter()
            .find(|n| n.name == name && n.op_type == op_type)
            .ok_or_else(|| self.corrupt(format!("no {op_type} node `{name}`")))
    }

    /// The initializers' names.
    pub fn initializer_names(&self) -> impl Iterator<Item = &str> {
        self.initializers.keys().map(String::as_str)
    }

    /// An error naming this file.
    pub fn corrupt(&self, reason: String) -> Error {
        Error::CorruptOnnx {
            path: self.path.clone(),
            reason,
        }
    }

    /// An initializer's dims and values as f32: floats as stored, 8-bit
    /// integers (quantized weights, zero points) and 64-bit ones (indices)
    /// as their integer values.
    pub fn values(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self
            .initializers
            .get(name)
            .ok_or_else(|| self.corrupt(format!("no initializer `{name}`")))?;
        let dims = t
            .dims
            .iter()
            .map(|&d| {
                usize::try_from(d)
                    .map_err(|_| self.corrupt(format!("`{name}` has a negative dimension")))
            })
            .collect::<Result<Vec<_>>>()?;
        let count: usize = dims.iter().product();
        let raw = &t.raw_data;
        let values: Vec<f32> = match t.data_type {
            ONNX_FLOAT if raw.is_empty() => t.float_data.clone(),
            ONNX_FLOAT => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            ONNX_INT8 if raw.is_empty() => t.int32_data.iter().map(|&v| v as f32).collect(),
            ONNX_INT8 => raw.iter().map(|&b| f32::from(b as i8)).collect(),
            ONNX_UINT8 if raw.is_empty() => t.int32_data.iter().map(|&v| v as f32).collect(),
            ONNX_UINT8 => raw.iter().map(|&b| f32::from(b)).collect(),
            ONNX_INT64 if raw.is_empty() => t.int64_data.iter().map(|&v| v as f32).collect(),
            ONNX_INT64 => raw
                .chunks_exact(8)
                .map(|c| {
                    i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
            other => {
                return Err(self.corrupt(format!(
                    "`{name}` has data type {other}, not a float, 8-bit or 64-bit integer"
                )))
            }
        };
        if values.len() != count {
            return Err(self.corrupt(format!(
                "`{name}`: shape {dims:?} needs {count} values, found {}",
                values.len()
            )));
        }
        Ok((dims, values))
    }
}
