//! How a network's tensors are named in a checkpoint: typednet's own names, or another
//! framework's through a declared mapping.
//!
//! typednet names a tensor by the path of fields down to it, joined by dots: the layer names of
//! the declaration, then the tensor's field (`conv1.weight`, `basic_down1_batchnorm3.scale`; a
//! composition adds its stages' names in front). PyTorch names a tensor by its module path
//! (`layer2.0.downsample.1.weight`). A [`NameMap`] turns the first into the second: whole-segment
//! prefix renames for layers, and renames (or omissions) for fields.

/// A declared mapping from typednet's tensor names to the names in a checkpoint file.
///
/// Layer rules rename a dotted prefix that ends at a segment boundary, the longest matching
/// rule first; field rules rename (or drop) the last segment. Names no rule matches are kept.
///
/// ```
/// use typednet::checkpoint::NameMap;
///
/// let map = NameMap::pytorch()
///     .layer("batchnorm1", "bn1")
///     .layer("basic_down1_conv3", "layer2.0.downsample.0")
///     .layer("linear1", "fc");
/// assert_eq!(map.file_name("batchnorm1.scale").as_deref(), Some("bn1.weight"));
/// assert_eq!(map.file_name("basic_down1_conv3.weight").as_deref(), Some("layer2.0.downsample.0.weight"));
/// assert_eq!(map.file_name("linear1.bias").as_deref(), Some("fc.bias"));
/// assert_eq!(map.file_name("conv1.weight").as_deref(), Some("conv1.weight"));
/// // PyTorch keeps a batch norm's ε and momentum as attributes, not in the state dict.
/// assert_eq!(map.file_name("batchnorm1.epsilon"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameMap {
    layers: Vec<(String, String)>,
    fields: Vec<(String, Option<String>)>,
}

impl NameMap {
    /// typednet's own names, unchanged.
    pub fn identity() -> NameMap {
        NameMap::default()
    }

    /// PyTorch's field names: a batch norm's `scale` is PyTorch's `weight` (`bias`,
    /// `running_mean` and `running_var` agree), and its `epsilon` and `momentum`, which PyTorch
    /// keeps as module attributes rather than in `state_dict()`, are not stored. Convolution and
    /// linear layers already agree (`weight` in PyTorch's layout, `bias`). Add [`NameMap::layer`]
    /// rules for the layer names.
    pub fn pytorch() -> NameMap {
        NameMap::identity()
            .field("scale", "weight")
            .skip_field("epsilon")
            .skip_field("momentum")
    }

    /// Renames the layer (or any dotted prefix) `typednet` to `file`: `conv1` → `features.0`
    /// renames `conv1.weight` to `features.0.weight`. Later rules do not override earlier ones
    /// of the same prefix; the longest matching prefix wins.
    pub fn layer(mut self, typednet: impl Into<String>, file: impl Into<String>) -> NameMap {
        self.layers.push((typednet.into(), file.into()));
        self
    }

    /// Renames every tensor field called `typednet` (the last segment of a name) to `file`.
    pub fn field(mut self, typednet: impl Into<String>, file: impl Into<String>) -> NameMap {
        self.fields.push((typednet.into(), Some(file.into())));
        self
    }

    /// Leaves every tensor (or scalar) field called `typednet` out of the file: saving skips
    /// it, loading keeps the model's value.
    pub fn skip_field(mut self, typednet: impl Into<String>) -> NameMap {
        self.fields.push((typednet.into(), None));
        self
    }

    /// The name in the file of the tensor typednet calls `name`, or `None` when it is not
    /// stored there.
    pub fn file_name(&self, name: &str) -> Option<String> {
        let (path, field) = match name.rsplit_once('.') {
            Some((path, field)) => (Some(path), field),
            None => (None, name),
        };
        let field = match self.fields.iter().find(|(from, _)| from == field) {
            Some((_, to)) => to.as_deref()?,
            None => field,
        };
        let Some(path) = path else {
            return Some(field.to_string());
        };
        let rule = self
            .layers
            .iter()
            .filter(|(from, _)| {
                path == from
                    || (path.starts_with(from.as_str()) && path[from.len()..].starts_with('.'))
            })
            .max_by_key(|(from, _)| from.len());
        let path = match rule {
            Some((from, to)) => format!("{to}{}", &path[from.len()..]),
            None => path.to_string(),
        };
        Some(format!("{path}.{field}"))
    }
}

#[cfg(test)]
mod tests {
    use super::NameMap;

    #[test]
    fn the_identity_keeps_every_name() {
        let map = NameMap::identity();
        for name in ["conv1.weight", "a.b.c", "scale", "batchnorm1.epsilon"] {
            assert_eq!(map.file_name(name).as_deref(), Some(name));
        }
    }

    #[test]
    fn layer_rules_match_whole_segments_only() {
        let map = NameMap::identity().layer("conv1", "features.0");
        assert_eq!(
            map.file_name("conv1.weight").as_deref(),
            Some("features.0.weight")
        );
        // `conv10` is another layer, not `conv1` followed by `0`.
        assert_eq!(
            map.file_name("conv10.weight").as_deref(),
            Some("conv10.weight")
        );
    }

    #[test]
    fn the_longest_prefix_wins_and_nested_paths_keep_their_tail() {
        let map = NameMap::identity()
            .layer("encoder", "enc")
            .layer("encoder.linear1", "enc.fc");
        assert_eq!(
            map.file_name("encoder.linear1.weight").as_deref(),
            Some("enc.fc.weight")
        );
        assert_eq!(
            map.file_name("encoder.linear2.bias").as_deref(),
            Some("enc.linear2.bias")
        );
    }

    #[test]
    fn pytorch_renames_batch_norm_scale_and_drops_its_scalars() {
        let map = NameMap::pytorch().layer("batchnorm1", "bn1");
        assert_eq!(
            map.file_name("batchnorm1.scale").as_deref(),
            Some("bn1.weight")
        );
        assert_eq!(
            map.file_name("batchnorm1.running_var").as_deref(),
            Some("bn1.running_var")
        );
        assert_eq!(map.file_name("batchnorm1.momentum"), None);
        assert_eq!(map.file_name("batchnorm1.epsilon"), None);
    }
}
