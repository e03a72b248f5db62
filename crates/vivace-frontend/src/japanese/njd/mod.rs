//! NJD, OpenJTalk's word list between MeCab and the full-context labels:
//! one node per word with its part of speech, reading, pronunciation,
//! accent and chaining rule, rewritten in place by the `njd_set_*` passes.
//!
//! The list is an arena of nodes linked by index, so that each pass reads
//! like OpenJTalk's C (pyopenjtalk-plus 0.4.1.post9's fork), which walks
//! and splices a doubly linked list. A field OpenJTalk leaves NULL is
//! `None` here and reads as `*`, as `NJDNode_get_*` returns it.

pub mod accent_phrase;
mod accent_phrase_rules;
pub mod accent_type;
mod accent_type_rules;
pub mod chaining;
pub mod digit;
mod digit_rules;
pub mod long_vowel;
mod long_vowel_rules;
pub mod pronunciation;
mod pronunciation_rules;
pub mod unvoiced_vowel;
mod unvoiced_vowel_rules;

/// pyopenjtalk-plus's `run_njd_from_mecab`: MeCab's morphs (each
/// `surface,feature`) through every NJD pass, with pyopenjtalk-plus's own
/// accent rules between the pronunciation and digit passes.
pub fn run(mecab_features: &[String]) -> Vec<Feature> {
    if mecab_features.is_empty() {
        return Vec::new();
    }
    let mut njd = Njd::from_mecab(mecab_features);
    pronunciation::apply(&mut njd);
    let mut features = njd.features();
    chaining::apply(&mut features);
    let mut njd = Njd::from_features(&features);
    digit::apply(&mut njd);
    accent_phrase::apply(&mut njd);
    accent_type::apply(&mut njd);
    unvoiced_vowel::apply(&mut njd);
    long_vowel::apply(&mut njd);
    njd.features()
}

/// What every `NJDNode_get_*` returns for a field that is not set.
pub const NO_DATA: &str = "*";

/// A node's index in its [`Njd`].
pub type NodeId = usize;

/// One word of the list (OpenJTalk's `NJDNode`).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The surface.
    pub string: Option<String>,
    /// Part of speech and its three subdivisions.
    pub pos: Option<String>,
    /// See [`Node::pos`].
    pub pos_group1: Option<String>,
    /// See [`Node::pos`].
    pub pos_group2: Option<String>,
    /// See [`Node::pos`].
    pub pos_group3: Option<String>,
    /// Conjugation type.
    pub ctype: Option<String>,
    /// Conjugation form.
    pub cform: Option<String>,
    /// Dictionary form.
    pub orig: Option<String>,
    /// Reading (katakana).
    pub read: Option<String>,
    /// Pronunciation (katakana, with ’ marking devoicing once set).
    pub pron: Option<String>,
    /// Accent nucleus (mora index, 0 = flat).
    pub acc: i32,
    /// Morae in `pron`.
    pub mora_size: i32,
    /// How the accent combines with the previous word (`C1`, `F2@1`, …).
    pub chain_rule: Option<String>,
    /// Whether the word joins the previous accent phrase: 1, 0, or -1
    /// when not decided yet.
    pub chain_flag: i32,
    /// The previous node.
    pub prev: Option<NodeId>,
    /// The next node.
    pub next: Option<NodeId>,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            string: None,
            pos: None,
            pos_group1: None,
            pos_group2: None,
            pos_group3: None,
            ctype: None,
            cform: None,
            orig: None,
            read: None,
            pron: None,
            acc: 0,
            mora_size: 0,
            chain_rule: None,
            chain_flag: -1,
            prev: None,
            next: None,
        }
    }
}

/// `NJDNode_set_*` for strings: an empty value clears the field.
pub fn value(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

/// `NJDNode_add_*`: appends, or sets when the field is not set.
fn append(field: &mut Option<String>, s: &str) {
    match field {
        Some(f) => f.push_str(s),
        None => *field = Some(s.to_owned()),
    }
}

/// C's `atoi`: optional blanks and sign, then leading digits; 0 when there
/// are none.
pub fn atoi(s: &str) -> i32 {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = (n * 10 + i64::from(b - b'0')).min(i64::from(i32::MAX) + 1);
    }
    let n = if negative { -n } else { n };
    n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

fn get(field: &Option<String>) -> &str {
    field.as_deref().unwrap_or(NO_DATA)
}

impl Node {
    /// The surface, or `*`.
    pub fn string(&self) -> &str {
        get(&self.string)
    }
    /// The part of speech, or `*`.
    pub fn pos(&self) -> &str {
        get(&self.pos)
    }
    /// The first subdivision, or `*`.
    pub fn pos_group1(&self) -> &str {
        get(&self.pos_group1)
    }
    /// The second subdivision, or `*`.
    pub fn pos_group2(&self) -> &str {
        get(&self.pos_group2)
    }
    /// The third subdivision, or `*`.
    pub fn pos_group3(&self) -> &str {
        get(&self.pos_group3)
    }
    /// The conjugation type, or `*`.
    pub fn ctype(&self) -> &str {
        get(&self.ctype)
    }
    /// The conjugation form, or `*`.
    pub fn cform(&self) -> &str {
        get(&self.cform)
    }
    /// The dictionary form, or `*`.
    pub fn orig(&self) -> &str {
        get(&self.orig)
    }
    /// The reading, or `*`.
    pub fn read(&self) -> &str {
        get(&self.read)
    }
    /// The pronunciation, or `*`.
    pub fn pron(&self) -> &str {
        get(&self.pron)
    }
    /// The chaining rule, or `*`.
    pub fn chain_rule(&self) -> &str {
        get(&self.chain_rule)
    }

    /// `NJDNode_set_string`.
    pub fn set_string(&mut self, s: Option<&str>) {
        self.string = value(s);
    }
    /// `NJDNode_set_pos`.
    pub fn set_pos(&mut self, s: Option<&str>) {
        self.pos = value(s);
    }
    /// `NJDNode_set_pos_group1`.
    pub fn set_pos_group1(&mut self, s: Option<&str>) {
        self.pos_group1 = value(s);
    }
    /// `NJDNode_set_pos_group2`.
    pub fn set_pos_group2(&mut self, s: Option<&str>) {
        self.pos_group2 = value(s);
    }
    /// `NJDNode_set_pos_group3`.
    pub fn set_pos_group3(&mut self, s: Option<&str>) {
        self.pos_group3 = value(s);
    }
    /// `NJDNode_set_ctype`.
    pub fn set_ctype(&mut self, s: Option<&str>) {
        self.ctype = value(s);
    }
    /// `NJDNode_set_cform`.
    pub fn set_cform(&mut self, s: Option<&str>) {
        self.cform = value(s);
    }
    /// `NJDNode_set_orig`.
    pub fn set_orig(&mut self, s: Option<&str>) {
        self.orig = value(s);
    }
    /// `NJDNode_set_read`.
    pub fn set_read(&mut self, s: Option<&str>) {
        self.read = value(s);
    }
    /// `NJDNode_set_pron`.
    pub fn set_pron(&mut self, s: Option<&str>) {
        self.pron = value(s);
    }
    /// `NJDNode_set_chain_rule`.
    pub fn set_chain_rule(&mut self, s: Option<&str>) {
        self.chain_rule = value(s);
    }
    /// `NJDNode_set_acc`: a negative accent becomes 0.
    pub fn set_acc(&mut self, acc: i32) {
        self.acc = acc.max(0);
    }
    /// `NJDNode_set_mora_size`: a negative size becomes 0.
    pub fn set_mora_size(&mut self, size: i32) {
        self.mora_size = size.max(0);
    }
    /// `NJDNode_add_string`.
    pub fn add_string(&mut self, s: &str) {
        append(&mut self.string, s);
    }
    /// `NJDNode_add_orig`.
    pub fn add_orig(&mut self, s: &str) {
        append(&mut self.orig, s);
    }
    /// `NJDNode_add_read`.
    pub fn add_read(&mut self, s: &str) {
        append(&mut self.read, s);
    }
    /// `NJDNode_add_pron`.
    pub fn add_pron(&mut self, s: &str) {
        append(&mut self.pron, s);
    }
    /// `NJDNode_add_acc`: the sum, never below 0.
    pub fn add_acc(&mut self, acc: i32) {
        self.acc = self.acc.saturating_add(acc).max(0);
    }
    /// `NJDNode_add_mora_size`: the sum, never below 0.
    pub fn add_mora_size(&mut self, size: i32) {
        self.mora_size = self.mora_size.saturating_add(size).max(0);
    }

    /// `NJDNode_copy`: every field but the links.
    pub fn copy_from(&mut self, other: &Node) {
        let (prev, next) = (self.prev, self.next);
        *self = other.clone();
        self.prev = prev;
        self.next = next;
    }

    /// The node as pyopenjtalk returns it (`NJDFeature`).
    pub fn feature(&self) -> Feature {
        Feature {
            string: self.string().to_owned(),
            pos: self.pos().to_owned(),
            pos_group1: self.pos_group1().to_owned(),
            pos_group2: self.pos_group2().to_owned(),
            pos_group3: self.pos_group3().to_owned(),
            ctype: self.ctype().to_owned(),
            cform: self.cform().to_owned(),
            orig: self.orig().to_owned(),
            read: self.read().to_owned(),
            pron: self.pron().to_owned(),
            acc: self.acc,
            mora_size: self.mora_size,
            chain_rule: self.chain_rule().to_owned(),
            chain_flag: self.chain_flag,
        }
    }
}

/// A word as pyopenjtalk hands it to Python (`NJDFeature`): every field
/// set, `*` where OpenJTalk has none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[allow(missing_docs)]
pub struct Feature {
    pub string: String,
    pub pos: String,
    pub pos_group1: String,
    pub pos_group2: String,
    pub pos_group3: String,
    pub ctype: String,
    pub cform: String,
    pub orig: String,
    pub read: String,
    pub pron: String,
    pub acc: i32,
    pub mora_size: i32,
    pub chain_rule: String,
    pub chain_flag: i32,
}

/// OpenJTalk's `NJDNode_fprint` line: `string,pos,…,acc/mora_size,chain_rule,chain_flag`.
impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{},{},{},{},{},{},{},{},{},{},{}/{},{},{}",
            self.string,
            self.pos,
            self.pos_group1,
            self.pos_group2,
            self.pos_group3,
            self.ctype,
            self.cform,
            self.orig,
            self.read,
            self.pron,
            self.acc,
            self.mora_size,
            self.chain_rule,
            self.chain_flag
        )
    }
}

impl Feature {
    /// The node pyopenjtalk's `feature2njd` builds from it (an empty field
    /// is unset; `*` stays a value).
    pub fn node(&self) -> Node {
        let mut node = Node::default();
        node.set_string(Some(&self.string));
        node.set_pos(Some(&self.pos));
        node.set_pos_group1(Some(&self.pos_group1));
        node.set_pos_group2(Some(&self.pos_group2));
        node.set_pos_group3(Some(&self.pos_group3));
        node.set_ctype(Some(&self.ctype));
        node.set_cform(Some(&self.cform));
        node.set_orig(Some(&self.orig));
        node.set_read(Some(&self.read));
        node.set_pron(Some(&self.pron));
        node.set_acc(self.acc);
        node.set_mora_size(self.mora_size);
        node.set_chain_rule(Some(&self.chain_rule));
        node.chain_flag = self.chain_flag;
        node
    }
}

/// The word list (OpenJTalk's `NJD`): nodes in an arena, linked from
/// `head` to `tail`. Removed nodes stay in the arena, unlinked.
#[derive(Debug, Clone, Default)]
pub struct Njd {
    /// Every node ever allocated, linked or not.
    pub nodes: Vec<Node>,
    /// The first node.
    pub head: Option<NodeId>,
    /// The last node, as OpenJTalk tracks it.
    pub tail: Option<NodeId>,
}

/// `get_token_from_string` of njd_node.c: the text up to the delimiter (or
/// the end), stepping over the delimiter.
fn token<'a>(s: &'a str, index: &mut usize, delimiter: u8) -> &'a str {
    let bytes = s.as_bytes();
    let start = (*index).min(bytes.len());
    let end = bytes[start..]
        .iter()
        .position(|&b| b == delimiter)
        .map_or(bytes.len(), |p| start + p);
    *index = if end < bytes.len() { end + 1 } else { end };
    // The delimiters are ASCII, so both ends are character boundaries.
    s.get(start..end).unwrap_or("")
}

impl Njd {
    /// `mecab2njd`: one node (or a chain, for a compound entry) per MeCab
    /// morph, each given as `surface,feature`.
    pub fn from_mecab(features: &[String]) -> Self {
        let mut njd = Self::default();
        for feature in features {
            let id = njd.alloc(Node::default());
            njd.load(id, feature);
            njd.push(id);
        }
        njd
    }

    /// pyopenjtalk's `feature2njd`: a list rebuilt from features.
    pub fn from_features(features: &[Feature]) -> Self {
        let mut njd = Self::default();
        for feature in features {
            let id = njd.alloc(feature.node());
            njd.push(id);
        }
        njd
    }

    /// pyopenjtalk's `njd2feature`: the linked nodes, in order.
    pub fn features(&self) -> Vec<Feature> {
        self.ids().map(|id| self.nodes[id].feature()).collect()
    }

    /// The linked nodes' ids from head to tail.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        std::iter::successors(self.head, |&id| self.nodes[id].next)
    }

    /// A new node in the arena, not linked yet.
    pub fn alloc(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The node after `id`.
    pub fn next(&self, id: NodeId) -> Option<NodeId> {
        self.nodes[id].next
    }

    /// The node before `id`.
    pub fn prev(&self, id: NodeId) -> Option<NodeId> {
        self.nodes[id].prev
    }

    /// `NJD_push_node`: links `id` (and whatever already follows it) at the
    /// end.
    pub fn push(&mut self, id: NodeId) {
        match (self.head, self.tail) {
            (Some(_), Some(tail)) => {
                self.nodes[tail].next = Some(id);
                self.nodes[id].prev = Some(tail);
            }
            _ => self.head = Some(id),
        }
        let mut last = id;
        while let Some(next) = self.nodes[last].next {
            last = next;
        }
        self.tail = Some(last);
    }

    /// `NJD_remove_node`: unlinks `id` and returns the node that followed
    /// it (none when it was the tail).
    pub fn remove(&mut self, id: NodeId) -> Option<NodeId> {
        let (prev, next) = (self.nodes[id].prev, self.nodes[id].next);
        let next = if Some(id) == self.head && Some(id) == self.tail {
            self.head = None;
            self.tail = None;
            None
        } else if Some(id) == self.head {
            self.head = next;
            if let Some(n) = next {
                self.nodes[n].prev = None;
            }
            next
        } else if Some(id) == self.tail {
            self.tail = prev;
            if let Some(p) = prev {
                self.nodes[p].next = None;
            }
            None
        } else {
            if let Some(p) = prev {
                self.nodes[p].next = next;
            }
            if let Some(n) = next {
                self.nodes[n].prev = prev;
            }
            next
        };
        self.nodes[id] = Node::default();
        next
    }

    /// `NJD_remove_silent_node`: drops every node whose pronunciation is
    /// unset.
    pub fn remove_silent(&mut self) {
        let mut node = self.head;
        while let Some(id) = node {
            node = if self.nodes[id].pron() == NO_DATA {
                self.remove(id)
            } else {
                self.nodes[id].next
            };
        }
    }

    /// `NJDNode_insert`: links the chain starting at `node` between `prev`
    /// and `next` (the end when `next` is none, leaving `tail` to the
    /// caller, as OpenJTalk does) and returns the chain's last node.
    pub fn insert(&mut self, prev: NodeId, next: Option<NodeId>, node: NodeId) -> NodeId {
        let mut tail = node;
        while let Some(n) = self.nodes[tail].next {
            tail = n;
        }
        self.nodes[prev].next = Some(node);
        self.nodes[node].prev = Some(prev);
        if let Some(n) = next {
            self.nodes[n].prev = Some(tail);
        }
        self.nodes[tail].next = next;
        tail
    }

    /// `NJDNode_load`: fills node `id` from a dictionary line
    /// (`surface,pos,…,acc/mora,chain_rule,chain_flag`). A compound entry
    /// (`1/3:0/4`) becomes a chain of new nodes after `id`, as OpenJTalk
    /// links them (the chain's last node ends the list).
    pub fn load(&mut self, id: NodeId, line: &str) {
        let mut index = 0;
        let string = token(line, &mut index, b',');
        let node = &mut self.nodes[id];
        node.set_pos(Some(token(line, &mut index, b',')));
        node.set_pos_group1(Some(token(line, &mut index, b',')));
        node.set_pos_group2(Some(token(line, &mut index, b',')));
        node.set_pos_group3(Some(token(line, &mut index, b',')));
        node.set_ctype(Some(token(line, &mut index, b',')));
        node.set_cform(Some(token(line, &mut index, b',')));
        let orig = token(line, &mut index, b',');
        let read = token(line, &mut index, b',');
        let pron = token(line, &mut index, b',');
        let acc = token(line, &mut index, b',');
        node.set_chain_rule(Some(token(line, &mut index, b',')));
        match token(line, &mut index, b',') {
            "1" => node.chain_flag = 1,
            "0" => node.chain_flag = 0,
            _ => {}
        }
        // A symbol.
        if acc.contains('*') || !acc.contains('/') {
            node.set_string(Some(string));
            node.set_orig(Some(orig));
            node.set_read(Some(read));
            node.set_pron(Some(pron));
            node.set_acc(0);
            node.set_mora_size(0);
            return;
        }
        let count = acc.bytes().filter(|&b| b == b'/').count();
        // A single word.
        if count == 1 {
            node.set_string(Some(string));
            node.set_orig(Some(orig));
            node.set_read(Some(read));
            node.set_pron(Some(pron));
            let mut index_acc = 0;
            node.set_acc(atoi(token(acc, &mut index_acc, b'/')));
            node.set_mora_size(atoi(token(acc, &mut index_acc, b':')));
            return;
        }
        // A compound: the surface splits where each part's `orig` is its
        // prefix (when it is not, the first part keeps the whole surface
        // and the others their `orig`, as post9's safe fallback does).
        let parts = orig.bytes().filter(|&b| b == b':').count();
        let mut aligned = parts == count - 1;
        let mut index_orig = 0;
        let mut index_string = 0;
        let mut i = 0;
        while aligned && i + 1 < count {
            let part = token(orig, &mut index_orig, b':');
            if part.is_empty() || !string.as_bytes()[index_string..].starts_with(part.as_bytes()) {
                aligned = false;
                break;
            }
            index_string += part.len();
            i += 1;
        }
        if aligned && index_string >= string.len() {
            aligned = false;
        }
        let (mut index_orig, mut index_read, mut index_pron, mut index_acc) = (0, 0, 0, 0);
        let mut index_string = 0;
        let mut current = id;
        let mut prev: Option<NodeId> = None;
        for i in 0..count {
            if let Some(p) = prev {
                let mut node = self.nodes[p].clone();
                node.chain_flag = 0;
                node.prev = Some(p);
                node.next = None;
                current = self.alloc(node);
                self.nodes[p].next = Some(current);
            }
            let node = &mut self.nodes[current];
            let part = token(orig, &mut index_orig, b':');
            node.set_orig(Some(part));
            if aligned {
                if i + 1 < count {
                    node.set_string(Some(part));
                    index_string += part.len();
                } else {
                    node.set_string(Some(string.get(index_string..).unwrap_or("")));
                }
            } else if i == 0 {
                node.set_string(Some(string));
            } else {
                node.set_string(Some(part));
            }
            node.set_read(Some(token(read, &mut index_read, b':')));
            node.set_pron(Some(token(pron, &mut index_pron, b':')));
            node.set_acc(atoi(token(acc, &mut index_acc, b'/')));
            node.set_mora_size(atoi(token(acc, &mut index_acc, b':')));
            prev = Some(current);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compound_entry_becomes_a_chain() {
        let njd = Njd::from_mecab(&[
            "笑止千万,名詞,形容動詞語幹,*,*,*,*,笑止:千万,ショウシ:センバン,ショーシ:センバン,1/3:0/4,C1,0".to_owned(),
        ]);
        let f = njd.features();
        assert_eq!(f.len(), 2);
        assert_eq!(
            (
                f[0].string.as_str(),
                f[0].pron.as_str(),
                f[0].acc,
                f[0].mora_size
            ),
            ("笑止", "ショーシ", 1, 3)
        );
        assert_eq!(
            (
                f[1].string.as_str(),
                f[1].pron.as_str(),
                f[1].acc,
                f[1].mora_size
            ),
            ("千万", "センバン", 0, 4)
        );
        assert_eq!((f[0].chain_flag, f[1].chain_flag), (0, 0));
        assert_eq!(njd.tail, Some(1));
    }

    #[test]
    fn atoi_reads_like_c() {
        assert_eq!(atoi("12ab"), 12);
        assert_eq!(atoi(" -3"), -3);
        assert_eq!(atoi("*"), 0);
        assert_eq!(atoi(""), 0);
    }
}
