//! Security group rules, normalised to one rule per peer so that live and desired rule sets
//! compare exactly.

use std::fmt;

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, PrefixListId, UserIdGroupPair};

/// Who a rule admits (ingress) or reaches (egress).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Peer {
    /// An IPv4 or IPv6 block.
    Cidr(String),
    /// A security group, by id.
    Group(String),
    /// A managed prefix list, by id.
    PrefixList(String),
}

/// One security group rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Rule {
    /// `tcp`, `udp`, `icmp` or `-1` (all).
    pub(crate) protocol: String,
    pub(crate) from: i32,
    pub(crate) to: i32,
    pub(crate) peer: Peer,
}

impl Rule {
    pub(crate) fn tcp(port: u16, peer: Peer) -> Self {
        Self {
            protocol: "tcp".into(),
            from: i32::from(port),
            to: i32::from(port),
            peer,
        }
    }

    /// Every TCP port.
    pub(crate) fn tcp_all(peer: Peer) -> Self {
        Self {
            protocol: "tcp".into(),
            from: 0,
            to: 65535,
            peer,
        }
    }

    pub(crate) fn all(peer: Peer) -> Self {
        Self {
            protocol: "-1".into(),
            from: -1,
            to: -1,
            peer,
        }
    }

    pub(crate) fn to_permission(&self) -> IpPermission {
        let mut b = IpPermission::builder().ip_protocol(&self.protocol);
        if self.protocol != "-1" {
            b = b.from_port(self.from).to_port(self.to);
        }
        match &self.peer {
            Peer::Cidr(c) if c.contains(':') => {
                b.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build())
            }
            Peer::Cidr(c) => b.ip_ranges(IpRange::builder().cidr_ip(c).build()),
            Peer::Group(g) => b.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build()),
            Peer::PrefixList(l) => {
                b.prefix_list_ids(PrefixListId::builder().prefix_list_id(l).build())
            }
        }
        .build()
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol.as_str() {
            "-1" => f.write_str("all")?,
            p if self.from == self.to => write!(f, "{p}/{}", self.from)?,
            p => write!(f, "{p}/{}-{}", self.from, self.to)?,
        }
        match &self.peer {
            Peer::Cidr(c) => write!(f, " {c}"),
            Peer::Group(g) => write!(f, " {g}"),
            Peer::PrefixList(l) => write!(f, " {l}"),
        }
    }
}

/// Renders a rule set as `[tcp/80 0.0.0.0/0, …]`.
pub(crate) fn render<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> String {
    let items: Vec<String> = rules.into_iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::rules_of;

    #[test]
    fn permissions_round_trip_through_rules() {
        let rules = [
            Rule::tcp(80, Peer::Cidr("0.0.0.0/0".into())),
            Rule::tcp(8080, Peer::Group("sg-1".into())),
            Rule::all(Peer::Cidr("::/0".into())),
            Rule::tcp(443, Peer::PrefixList("pl-1".into())),
        ];
        let perms: Vec<_> = rules.iter().map(Rule::to_permission).collect();
        let back = rules_of(&perms);
        assert_eq!(back, rules.iter().cloned().collect());
        assert_eq!(
            render(&back),
            "[all ::/0, tcp/80 0.0.0.0/0, tcp/443 pl-1, tcp/8080 sg-1]"
        );
    }
}
