//! `data.inventory`, laid out as Gatekeeper lays it out, so that referential policies from
//! the gatekeeper-library run unmodified:
//!
//! ```text
//! data.inventory.cluster[groupversion][kind][name]                 cluster-scoped objects
//! data.inventory.namespace[namespace][groupversion][kind][name]    namespaced objects
//! ```
//!
//! `groupversion` is the object's `apiVersion` (`networking.k8s.io/v1`, `v1`).
//!
//! The tree is kept as a Rego value and changed in place: its maps are shared, copy-on-write,
//! with the snapshots handed out ([`Inventory::data`]), so that a change copies the maps on
//! its path and nothing else, and a decision reads a snapshot without a lock. `check` fills
//! one with the head's objects (as `gator test` does), the webhook with the synced kinds of
//! the cluster.

use regorus::Value as Rego;
use serde_json::Value;

use crate::input::json_to_rego;

/// Where an object sits in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    /// `apiVersion`.
    pub group_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl Slot {
    /// The slot of an object (`None` without an apiVersion, kind or name).
    pub fn of(obj: &Value) -> Option<Slot> {
        fn text(v: Option<&Value>) -> Option<&str> {
            v.and_then(Value::as_str).filter(|s| !s.is_empty())
        }
        Some(Slot {
            group_version: text(obj.get("apiVersion"))?.to_string(),
            kind: text(obj.get("kind"))?.to_string(),
            namespace: text(obj.pointer("/metadata/namespace")).map(str::to_string),
            name: text(obj.pointer("/metadata/name"))?.to_string(),
        })
    }

    /// The keys from the inventory's root to the object.
    fn path(&self) -> Vec<&str> {
        match &self.namespace {
            Some(ns) => vec!["namespace", ns, &self.group_version, &self.kind, &self.name],
            None => vec!["cluster", &self.group_version, &self.kind, &self.name],
        }
    }
}

/// The inventory: a Rego tree and the number of objects in it.
#[derive(Debug, Clone)]
pub struct Inventory {
    root: Rego,
    len: usize,
}

impl Default for Inventory {
    fn default() -> Self {
        let mut root = Rego::new_object();
        if let Ok(map) = root.as_object_mut() {
            map.insert(Rego::from("cluster"), Rego::new_object());
            map.insert(Rego::from("namespace"), Rego::new_object());
        }
        Inventory { root, len: 0 }
    }
}

impl Inventory {
    /// An inventory of `objects` (those without a slot are left out).
    pub fn of<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Inventory {
        let mut inventory = Inventory::default();
        for obj in objects {
            inventory.insert(obj);
        }
        inventory
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds (or replaces) an object; `false` when it has no slot.
    pub fn insert(&mut self, obj: &Value) -> bool {
        match Slot::of(obj) {
            Some(slot) => {
                self.insert_at(&slot, json_to_rego(obj));
                true
            }
            None => false,
        }
    }

    /// Adds (or replaces) the object at `slot`.
    pub fn insert_at(&mut self, slot: &Slot, value: Rego) {
        let path = slot.path();
        let (last, parents) = path.split_last().expect("a path has a name");
        let mut node = &mut self.root;
        for key in parents {
            let Ok(map) = node.as_object_mut() else {
                return;
            };
            node = map.get_or_insert_with(Rego::from(*key), Rego::new_object);
        }
        if let Ok(map) = node.as_object_mut()
            && map.insert(Rego::from(*last), value).is_none()
        {
            self.len += 1;
        }
    }

    /// Removes the object at `slot`, and the maps it leaves empty.
    pub fn remove(&mut self, slot: &Slot) -> bool {
        let path = slot.path();
        let removed = remove_path(&mut self.root, &path, true);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Removes every object of a kind (before a new complete list of it is put in).
    pub fn clear_kind(&mut self, group_version: &str, kind: &str) {
        let mut removed = 0;
        let gv = Rego::from(group_version);
        let kind = Rego::from(kind);
        let Ok(root) = self.root.as_object_mut() else {
            return;
        };
        if let Some(cluster) = root.get_mut(&Rego::from("cluster")) {
            removed += remove_kind(cluster, &gv, &kind);
        }
        if let Some(Ok(namespaces)) = root
            .get_mut(&Rego::from("namespace"))
            .map(Rego::as_object_mut)
        {
            // Only namespaces that hold the kind are touched (and so copied).
            let holding: Vec<Rego> = namespaces
                .iter()
                .filter(|(_, ns)| {
                    ns.as_object()
                        .ok()
                        .and_then(|m| m.get(&gv))
                        .and_then(|g| g.as_object().ok())
                        .is_some_and(|g| g.contains_key(&kind))
                })
                .map(|(name, _)| name.clone())
                .collect();
            for name in holding {
                if let Some(ns) = namespaces.get_mut(&name) {
                    removed += remove_kind(ns, &gv, &kind);
                    if ns.as_object().is_ok_and(|m| m.is_empty()) {
                        namespaces.remove(&name);
                    }
                }
            }
        }
        self.len -= removed;
    }

    /// The data document to evaluate with: `{"inventory": ...}`. Cheap: the tree is shared
    /// with the inventory until the inventory next changes.
    pub fn data(&self) -> Rego {
        let mut data = Rego::new_object();
        if let Ok(map) = data.as_object_mut() {
            map.insert(Rego::from("inventory"), self.root.clone());
        }
        data
    }
}

/// Removes `gv → kind` under `node` (`{gv: {kind: {name: obj}}}`); returns how many objects
/// went with it.
fn remove_kind(node: &mut Rego, gv: &Rego, kind: &Rego) -> usize {
    let holds = node
        .as_object()
        .ok()
        .and_then(|m| m.get(gv))
        .and_then(|g| g.as_object().ok())
        .is_some_and(|g| g.contains_key(kind));
    if !holds {
        return 0;
    }
    let Ok(map) = node.as_object_mut() else {
        return 0;
    };
    let Some(Ok(kinds)) = map.get_mut(gv).map(Rego::as_object_mut) else {
        return 0;
    };
    let removed = kinds
        .remove(kind)
        .and_then(|k| k.as_object().ok().map(|m| m.len()))
        .unwrap_or(0);
    if kinds.is_empty() {
        map.remove(gv);
    }
    removed
}

/// Removes the leaf at `path` and prunes the maps it leaves empty (never the root's own two).
fn remove_path(node: &mut Rego, path: &[&str], root: bool) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let key = Rego::from(*first);
    // Look before copying: a miss must not copy shared maps.
    let present = node.as_object().ok().is_some_and(|m| m.contains_key(&key));
    if !present {
        return false;
    }
    let Ok(map) = node.as_object_mut() else {
        return false;
    };
    if rest.is_empty() {
        return map.remove(&key).is_some();
    }
    let Some(child) = map.get_mut(&key) else {
        return false;
    };
    let removed = remove_path(child, rest, false);
    // The root's `cluster` and `namespace` stay.
    if removed && !root && child.as_object().is_ok_and(|m| m.is_empty()) {
        map.remove(&key);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ingress(ns: &str, name: &str, host: &str) -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": name, "namespace": ns},
               "spec": {"rules": [{"host": host}]}})
    }

    fn json_of(inv: &Inventory) -> Value {
        serde_json::to_value(inv.data()).unwrap()
    }

    #[test]
    fn gatekeeper_layout() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}});
        let inv = Inventory::of([&ingress("web", "a", "x.example"), &ns]);
        let data = json_of(&inv);
        assert_eq!(
            data["inventory"]["namespace"]["web"]["networking.k8s.io/v1"]["Ingress"]["a"]["spec"]["rules"]
                [0]["host"],
            "x.example"
        );
        assert!(data["inventory"]["cluster"]["v1"]["Namespace"]["web"].is_object());
        assert_eq!(inv.len(), 2);
    }

    #[test]
    fn snapshots_do_not_change_with_the_inventory() {
        let mut inv = Inventory::of([&ingress("web", "a", "x")]);
        let before = inv.data();
        inv.insert(&ingress("web", "b", "y"));
        inv.remove(&Slot::of(&ingress("web", "a", "x")).unwrap());
        let old = serde_json::to_value(&before).unwrap();
        assert!(
            old["inventory"]["namespace"]["web"]["networking.k8s.io/v1"]["Ingress"]["a"]
                .is_object()
        );
        assert!(
            old["inventory"]["namespace"]["web"]["networking.k8s.io/v1"]["Ingress"]["b"].is_null()
        );
        let now = json_of(&inv);
        let ingresses = &now["inventory"]["namespace"]["web"]["networking.k8s.io/v1"]["Ingress"];
        assert!(ingresses["a"].is_null() && ingresses["b"].is_object());
        assert_eq!(inv.len(), 1);
    }

    #[test]
    fn removing_prunes_and_clearing_a_kind_empties_it() {
        let mut inv = Inventory::of([&ingress("web", "a", "x"), &ingress("shop", "b", "y")]);
        assert!(inv.remove(&Slot::of(&ingress("web", "a", "x")).unwrap()));
        assert!(!inv.remove(&Slot::of(&ingress("web", "a", "x")).unwrap()));
        assert!(json_of(&inv)["inventory"]["namespace"]["web"].is_null());
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}});
        inv.insert(&cm);
        inv.clear_kind("networking.k8s.io/v1", "Ingress");
        let now = json_of(&inv);
        assert!(now["inventory"]["namespace"]["shop"]["networking.k8s.io/v1"].is_null());
        assert!(now["inventory"]["namespace"]["shop"]["v1"]["ConfigMap"]["c"].is_object());
        assert_eq!(inv.len(), 1);
        assert_eq!(
            now["inventory"]["cluster"],
            json!({}),
            "the two roots stay, so that policies can always index them"
        );
    }
}
