//! pyopenjtalk-plus's 「何」 reading model (`yomi_model/nani_enc.onnx` and
//! `nani_model.onnx`, from its wheel): whether a standalone 何 reads ナン
//! rather than ナニ, from the next word's part of speech, pronunciation and
//! conjugation. A one-hot encoding of six string columns (ONNX-ML
//! `OneHotEncoder`, unknown values all zero) feeds a random forest
//! (`TreeEnsembleClassifier`: per-tree leaf weights summed per class),
//! evaluated here from the files' own tables.

use std::path::Path;

use crate::error::Result;
use crate::onnx::{GraphNode, OnnxGraph};

/// One `BRANCH_LEQ` split or leaf of a tree.
#[derive(Debug, Clone)]
struct TreeNode {
    /// Feature index, threshold, and the nodes for true (≤) and false.
    branch: Option<(usize, f32, usize, usize)>,
    /// Class weights added at this leaf: (class, weight).
    weights: Vec<(usize, f32)>,
}

/// The encoder and the forest.
pub struct NaniModel {
    /// Per encoded column, in the encoder's concatenation order: the input
    /// column and its categories.
    columns: Vec<(usize, Vec<String>)>,
    /// Each tree's nodes by node id.
    trees: Vec<Vec<TreeNode>>,
    classes: usize,
}

fn attribute<'a>(
    graph: &OnnxGraph,
    node: &'a GraphNode,
    name: &str,
) -> Result<&'a crate::onnx::Attribute> {
    node.attribute(name)
        .ok_or_else(|| graph.corrupt(format!("{} has no `{name}`", node.op_type)))
}

impl NaniModel {
    /// Reads the encoder and forest files.
    pub fn load(encoder: &Path, forest: &Path) -> Result<Self> {
        Ok(Self {
            columns: read_encoder(encoder)?,
            ..read_forest(forest)?
        })
    }

    /// The number of encoded features.
    fn width(&self) -> usize {
        self.columns.iter().map(|(_, c)| c.len()).sum()
    }

    /// The class probabilities for one row of the six string columns
    /// (`pos`, `pos_group1`, `pos_group2`, `pron`, `ctype`, `cform`).
    pub fn probabilities(&self, row: &[&str]) -> Vec<f32> {
        let mut x = vec![0f32; self.width()];
        let mut offset = 0;
        for (column, categories) in &self.columns {
            if let Some(k) = row
                .get(*column)
                .and_then(|v| categories.iter().position(|c| c == v))
            {
                x[offset + k] = 1.0;
            }
            offset += categories.len();
        }
        let mut scores = vec![0f32; self.classes];
        for tree in &self.trees {
            let mut id = 0;
            // A well-formed tree reaches a leaf within its node count.
            for _ in 0..=tree.len() {
                let Some(node) = tree.get(id) else { break };
                match node.branch {
                    Some((feature, threshold, yes, no)) => {
                        id = if x.get(feature).is_some_and(|&v| v <= threshold) {
                            yes
                        } else {
                            no
                        };
                    }
                    None => {
                        for &(class, weight) in &node.weights {
                            scores[class] += weight;
                        }
                        break;
                    }
                }
            }
        }
        scores
    }

    /// Whether 何 reads ナン before a word with these columns: the argmax
    /// of the probabilities is class 1 (ties go to ナニ, class 0).
    pub fn reads_nan(&self, row: &[&str]) -> bool {
        let p = self.probabilities(row);
        p.get(1)
            .is_some_and(|&nan| p.first().is_none_or(|&nani| nan > nani))
    }
}

/// The encoder graph: `Gather(input, k)` → `OneHotEncoder` per column, all
/// concatenated.
fn read_encoder(path: &Path) -> Result<Vec<(usize, Vec<String>)>> {
    let graph = OnnxGraph::read(path)?;
    let concat = graph
        .nodes
        .iter()
        .find(|n| n.op_type == "Concat")
        .ok_or_else(|| graph.corrupt("the encoder has no Concat".into()))?;
    let producer = |value: &str| {
        graph
            .nodes
            .iter()
            .find(|n| n.outputs.iter().any(|o| o == value))
    };
    let mut columns = Vec::new();
    for input in &concat.inputs {
        let encoder = producer(input)
            .filter(|n| n.op_type == "OneHotEncoder")
            .ok_or_else(|| graph.corrupt(format!("`{input}` is not a OneHotEncoder's output")))?;
        let gather = encoder
            .inputs
            .first()
            .and_then(|i| producer(i))
            .filter(|n| n.op_type == "Gather")
            .ok_or_else(|| graph.corrupt("a OneHotEncoder does not read a Gather".into()))?;
        let index = gather
            .inputs
            .get(1)
            .ok_or_else(|| graph.corrupt("a Gather has no index".into()))?;
        let (_, k) = graph.values(index)?;
        let column = k
            .first()
            .map(|&v| v as usize)
            .ok_or_else(|| graph.corrupt("an empty index".into()))?;
        let categories = attribute(&graph, encoder, "cats_strings")?
            .strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        columns.push((column, categories));
    }
    Ok(columns)
}

/// The forest: `TreeEnsembleClassifier`'s node and class tables.
fn read_forest(path: &Path) -> Result<NaniModel> {
    let graph = OnnxGraph::read(path)?;
    let node = graph
        .nodes
        .iter()
        .find(|n| n.op_type == "TreeEnsembleClassifier")
        .ok_or_else(|| graph.corrupt("no TreeEnsembleClassifier".into()))?;
    let ints = |name: &str| attribute(&graph, node, name).map(|a| a.ints.clone());
    let (tree_ids, node_ids) = (ints("nodes_treeids")?, ints("nodes_nodeids")?);
    let (features, yes, no) = (
        ints("nodes_featureids")?,
        ints("nodes_truenodeids")?,
        ints("nodes_falsenodeids")?,
    );
    let values = attribute(&graph, node, "nodes_values")?.floats.clone();
    let modes = attribute(&graph, node, "nodes_modes")?.strings.clone();
    let (class_trees, class_nodes, class_ids) = (
        ints("class_treeids")?,
        ints("class_nodeids")?,
        ints("class_ids")?,
    );
    let class_weights = attribute(&graph, node, "class_weights")?.floats.clone();
    let classes = attribute(&graph, node, "classlabels_int64s")?.ints.len();
    let post = node
        .attribute("post_transform")
        .map(|a| a.strings.concat())
        .unwrap_or_default();
    if !(post.is_empty() || post == b"NONE") {
        return Err(graph.corrupt("post_transform is not NONE".into()));
    }
    let n = tree_ids.len();
    if [
        node_ids.len(),
        features.len(),
        yes.len(),
        no.len(),
        values.len(),
        modes.len(),
    ]
    .iter()
    .any(|&l| l != n)
        || class_nodes.len() != class_trees.len()
        || class_ids.len() != class_trees.len()
        || class_weights.len() != class_trees.len()
    {
        return Err(graph.corrupt("the tree tables differ in length".into()));
    }
    let index = |v: i64| usize::try_from(v).map_err(|_| graph.corrupt("a negative id".into()));
    let mut trees: Vec<Vec<TreeNode>> = Vec::new();
    for i in 0..n {
        let (tree, id) = (index(tree_ids[i])?, index(node_ids[i])?);
        if tree >= trees.len() {
            trees.resize(tree + 1, Vec::new());
        }
        let nodes = &mut trees[tree];
        if id >= nodes.len() {
            nodes.resize(
                id + 1,
                TreeNode {
                    branch: None,
                    weights: Vec::new(),
                },
            );
        }
        nodes[id].branch = match modes[i].as_slice() {
            b"LEAF" => None,
            b"BRANCH_LEQ" => Some((
                index(features[i])?,
                values[i],
                index(yes[i])?,
                index(no[i])?,
            )),
            other => {
                return Err(graph.corrupt(format!(
                    "unsupported node mode {}",
                    String::from_utf8_lossy(other)
                )));
            }
        };
    }
    for i in 0..class_trees.len() {
        let (tree, id, class) = (
            index(class_trees[i])?,
            index(class_nodes[i])?,
            index(class_ids[i])?,
        );
        let leaf = trees
            .get_mut(tree)
            .and_then(|t| t.get_mut(id))
            .filter(|_| class < classes)
            .ok_or_else(|| graph.corrupt("a class weight names no leaf".into()))?;
        leaf.weights.push((class, class_weights[i]));
    }
    Ok(NaniModel {
        columns: Vec::new(),
        trees,
        classes,
    })
}
