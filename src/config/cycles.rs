//! Dependency cycles as configuration errors: among deployments
//! (`depends_on`, `promote_from`) and among locals. Pure: the loader calls it
//! on the configuration it built, before anything is planned; the deployment
//! graph the planner orders by is [`crate::graph`].

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::config::Config;
use crate::diagnostics::{Diagnostic, Diagnostics};

/// Every dependency cycle among `edges` (`(a, b)`: `a` depends on `b`), each
/// as a closed walk in dependency order starting at its smallest member:
/// `[a, b, c, a]`. Nodes that only depend on a cycle are not members of it.
pub fn dependency_cycles(edges: &[(String, String)]) -> Vec<Vec<String>> {
    let mut graph: DiGraph<String, ()> = DiGraph::new();
    let mut index: BTreeMap<&String, NodeIndex> = BTreeMap::new();
    for (from, to) in edges {
        for name in [from, to] {
            if !index.contains_key(name) {
                index.insert(name, graph.add_node(name.clone()));
            }
        }
        graph.update_edge(index[from], index[to], ());
    }
    let mut cycles = Vec::new();
    for component in tarjan_scc(&graph) {
        let members: BTreeSet<NodeIndex> = component.iter().copied().collect();
        let Some(start) = component
            .iter()
            .copied()
            .min_by(|a, b| graph[*a].cmp(&graph[*b]))
        else {
            continue;
        };
        if component.len() == 1 && graph.find_edge(start, start).is_none() {
            continue;
        }
        // Walk from the smallest member, always to the smallest unvisited
        // neighbour inside the component, until an edge leads back to it.
        let mut walk = vec![start];
        let mut visited = BTreeSet::from([start]);
        let mut current = start;
        loop {
            let mut next: Vec<NodeIndex> = graph
                .neighbors(current)
                .filter(|n| members.contains(n))
                .collect();
            next.sort_by(|a, b| graph[*a].cmp(&graph[*b]));
            if next.contains(&start)
                && (walk.len() == members.len() || next.iter().all(|n| visited.contains(n)))
            {
                walk.push(start);
                break;
            }
            match next.into_iter().find(|n| !visited.contains(n)) {
                Some(n) => {
                    visited.insert(n);
                    walk.push(n);
                    current = n;
                }
                None => {
                    // Dead end inside the component: close through the start.
                    walk.push(start);
                    break;
                }
            }
        }
        cycles.push(walk.into_iter().map(|n| graph[n].clone()).collect());
    }
    cycles.sort();
    cycles
}

/// Diagnostics for dependency cycles, one per member, pointing at the
/// reference that closes the loop.
pub fn cycle_diagnostics(config: &Config) -> Diagnostics {
    let mut edges = Vec::new();
    for deployment in config.deployments.values() {
        for target in deployment
            .depends_on
            .iter()
            .chain(deployment.promote_from.iter())
        {
            edges.push((deployment.address.clone(), target.address.clone()));
        }
    }
    let mut diagnostics = Diagnostics::default();
    for cycle in dependency_cycles(&edges) {
        let message = if cycle.len() == 2 {
            format!("{} depends on itself", cycle[0])
        } else {
            format!(
                "dependency cycle between deployments: {} (→ means waits for)",
                cycle.join(" → ")
            )
        };
        for pair in cycle.windows(2) {
            let (address, waits_for) = (&pair[0], &pair[1]);
            let deployment = &config.deployments[address];
            let span = deployment
                .depends_on
                .iter()
                .chain(deployment.promote_from.iter())
                .find(|r| &r.address == waits_for)
                .map_or(deployment.span, |r| r.span);
            diagnostics.push(
                Diagnostic::error("cycle", message.clone())
                    .at(span)
                    .label(format!("{address} waits for {waits_for}"))
                    .help(
                        "remove one depends_on or promote_from so the deployments can be ordered",
                    ),
            );
        }
    }
    diagnostics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn cycles_are_reported_in_dependency_order_without_bystanders() {
        let found = dependency_cycles(&edges(&[
            ("dev", "staging"),
            ("staging", "qa"),
            ("qa", "dev"),
            ("prod", "dev"),
        ]));
        assert_eq!(found, vec![vec!["dev", "staging", "qa", "dev"]]);
        assert_eq!(
            dependency_cycles(&edges(&[("a", "a")])),
            vec![vec!["a", "a"]]
        );
        assert!(dependency_cycles(&edges(&[("a", "b"), ("b", "c")])).is_empty());
    }
}
