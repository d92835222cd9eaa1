//! The deployment dependency graph.
//!
//! Nodes are deployments; an edge `a → b` means `b` runs after `a` (from
//! `depends_on` and `promote_from`). The graph yields the waves apply may run in
//! parallel, reports cycles naming every member, and renders DOT. Pure: it
//! reads the configuration and nothing else. A cycle is a configuration error
//! the loader reports ([`crate::config::cycles`]) before a graph is built.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::config::Config;

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
