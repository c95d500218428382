//! Deletions a watch missed, told after its relist. A watch that cannot resume (its history
//! compacted while it was away: 410 Gone) lists again, and an object deleted meanwhile is
//! simply absent from the new list: the store drops it when the list is done, but no event
//! names it, so `touched_objects` never hears of it (kube-runtime's `Event::InitDone`: what
//! the list did not name "should be assumed to have been deleted"). A workspace waiting for
//! its claim or volume to go then waited for its re-check, up to minutes, and a controller
//! beside the workspaces' watch never heard of a workspace gone. client-go tells these as
//! `DeletedFinalStateUnknown`; here they come as `Event::Delete` of the last copy the store
//! held, right after `InitDone`.

use futures::stream::{self, Iter};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

type Item<K> = Result<watcher::Event<K>, watcher::Error>;

/// For `flat_map` after `reflect(writer)` of `store`'s writer: each event as it came, and
/// after a list's `InitDone` a deletion for every object the store held before the list and
/// not after it. The store is read at `Init` (the reflector swaps it in only at `InitDone`).
pub(crate) fn deletions<K>(
    store: Store<K>,
) -> impl FnMut(Item<K>) -> Iter<std::vec::IntoIter<Item<K>>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let mut before = Vec::new();
    move |event| {
        let mut out = Vec::new();
        match &event {
            Ok(watcher::Event::Init) => before = store.state(),
            Ok(watcher::Event::InitDone) => {
                out = std::mem::take(&mut before)
                    .into_iter()
                    .filter(|old| store.get(&ObjectRef::from_obj(old.as_ref())).is_none())
                    .map(|old| Ok(watcher::Event::Delete(old.as_ref().clone())))
                    .collect();
            }
            _ => {}
        }
        out.insert(0, event);
        stream::iter(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::{WatchStreamExt, reflector};

    fn map(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ml".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(touched: Vec<Result<ConfigMap, watcher::Error>>) -> Vec<String> {
        touched
            .into_iter()
            .map(|t| t.expect("no error").metadata.name.unwrap_or_default())
            .collect()
    }

    /// A relist that no longer names `b` tells `b`'s deletion after it is done; `a`, listed
    /// again, and `c`, new, come as the list's own objects; the first list tells no deletion.
    #[tokio::test]
    async fn an_object_gone_from_a_relist_is_told_as_deleted() {
        use watcher::Event::{Init, InitApply, InitDone};
        let (store, writer) = reflector::store::<ConfigMap>();
        let first = vec![Init, InitApply(map("a")), InitApply(map("b")), InitDone];
        let again = vec![Init, InitApply(map("a")), InitApply(map("c")), InitDone];
        let events = first.into_iter().chain(again).map(Ok);
        let touched: Vec<_> = stream::iter(events)
            .reflect(writer)
            .flat_map(deletions(store.clone()))
            .touched_objects()
            .collect()
            .await;
        assert_eq!(names(touched), ["a", "b", "a", "c", "b"]);
        assert!(store.get(&ObjectRef::new("b").within("ml")).is_none());
    }

    /// Deleted in the watch itself, an object is told once: its own event, not again by the
    /// next relist.
    #[tokio::test]
    async fn a_deletion_the_watch_saw_is_not_told_again() {
        use watcher::Event::{Delete, Init, InitApply, InitDone};
        let (store, writer) = reflector::store::<ConfigMap>();
        let events = vec![
            Init,
            InitApply(map("a")),
            InitApply(map("b")),
            InitDone,
            Delete(map("b")),
            Init,
            InitApply(map("a")),
            InitDone,
        ];
        let touched: Vec<_> = stream::iter(events.into_iter().map(Ok))
            .reflect(writer)
            .flat_map(deletions(store))
            .touched_objects()
            .collect()
            .await;
        assert_eq!(names(touched), ["a", "b", "b", "a"]);
    }
}
