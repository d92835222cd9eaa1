//! The deployment dependency graph.
//!
//! Nodes are deployments; an edge `a → b` means `b` runs after `a` (from
//! `depends_on` and `promote_from`). The graph yields the waves apply may run in
//! parallel, reports cycles naming every member, and renders DOT. Pure: it
//! reads the configuration and nothing else.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::config::Config;
use crate::diagnostics::{Diagnostic, Diagnostics};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    DependsOn,
    PromoteFrom,
}

pub struct DeploymentGraph {
    graph: DiGraph<String, EdgeKind>,
    nodes: BTreeMap<String, NodeIndex>,
}

impl DeploymentGraph {
    /// Build the graph from the deployments of `config` plus extra nodes (for
    /// example deployments only present in state, which have no edges).
    pub fn build(config: &Config) -> DeploymentGraph {
        let mut graph = DiGraph::new();
        let mut nodes = BTreeMap::new();
        for address in config.deployments.keys() {
            nodes.insert(address.clone(), graph.add_node(address.clone()));
        }
        for deployment in config.deployments.values() {
            let to = nodes[&deployment.address];
            for dependency in &deployment.depends_on {
                if let Some(from) = nodes.get(&dependency.address) {
                    graph.update_edge(*from, to, EdgeKind::DependsOn);
                }
            }
            if let Some(source) = &deployment.promote_from {
                if let Some(from) = nodes.get(&source.address) {
                    if graph.find_edge(*from, to).is_none() {
                        graph.add_edge(*from, to, EdgeKind::PromoteFrom);
                    }
                }
            }
        }
        DeploymentGraph { graph, nodes }
    }

    /// Every deployment `address` waits for, directly or through others
    /// (`depends_on` and `promote_from`), sorted; empty for an unknown one.
    pub fn upstream(&self, address: &str) -> BTreeSet<String> {
        let Some(start) = self.nodes.get(address) else {
            return BTreeSet::new();
        };
        let mut found = BTreeSet::new();
        let mut walk = petgraph::visit::Bfs::new(petgraph::visit::Reversed(&self.graph), *start);
        while let Some(node) = walk.next(petgraph::visit::Reversed(&self.graph)) {
            if node != *start {
                found.insert(self.graph[node].clone());
            }
        }
        found
    }

    /// Every cycle, each as the sorted addresses of its members.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let mut cycles: Vec<Vec<String>> = tarjan_scc(&self.graph)
            .into_iter()
            .filter(|component| {
                component.len() > 1 || self.graph.find_edge(component[0], component[0]).is_some()
            })
            .map(|component| {
                let mut members: Vec<String> =
                    component.iter().map(|n| self.graph[*n].clone()).collect();
                members.sort();
                members
            })
            .collect();
        cycles.sort();
        cycles
    }

    /// Layers of deployments: every deployment comes after all it depends on;
    /// the deployments of one layer are independent of each other. Members of
    /// cycles are left out (a cycle is an error reported elsewhere).
    pub fn waves(&self) -> Vec<Vec<String>> {
        let mut remaining: BTreeMap<NodeIndex, usize> = self
            .nodes
            .values()
            .map(|n| {
                (
                    *n,
                    self.graph
                        .neighbors_directed(*n, Direction::Incoming)
                        .count(),
                )
            })
            .collect();
        let mut waves = Vec::new();
        loop {
            let ready: BTreeSet<String> = remaining
                .iter()
                .filter(|(_, incoming)| **incoming == 0)
                .map(|(n, _)| self.graph[*n].clone())
                .collect();
            if ready.is_empty() {
                break;
            }
            for address in &ready {
                let node = self.nodes[address];
                remaining.remove(&node);
                for next in self.graph.neighbors_directed(node, Direction::Outgoing) {
                    if let Some(count) = remaining.get_mut(&next) {
                        *count = count.saturating_sub(1);
                    }
                }
            }
            waves.push(ready.into_iter().collect());
        }
        waves
    }

    /// Graphviz DOT text, stable across runs.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph slipway {\n  rankdir = LR;\n  node [shape = box];\n");
        for address in self.nodes.keys() {
            out.push_str(&format!("  \"{address}\";\n"));
        }
        let mut edges: Vec<(String, String, EdgeKind)> = self
            .graph
            .edge_indices()
            .filter_map(|e| {
                let (a, b) = self.graph.edge_endpoints(e)?;
                Some((self.graph[a].clone(), self.graph[b].clone(), self.graph[e]))
            })
            .collect();
        edges.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        for (from, to, kind) in edges {
            let style = match kind {
                EdgeKind::DependsOn => "",
                EdgeKind::PromoteFrom => " [style = dashed, label = \"promote\"]",
            };
            out.push_str(&format!("  \"{from}\" -> \"{to}\"{style};\n"));
        }
        out.push_str("}\n");
        out
    }
}

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
