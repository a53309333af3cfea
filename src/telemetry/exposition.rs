//! Rendering a Prometheus registry for scrapers.
//!
//! The client library writes OpenMetrics, where a counter family `x` has samples `x_total`.
//! The classic text format (format 0.0.4: what `promtool check metrics`, curl users and older
//! scrapers read) names the family after its samples, so counter families are renamed and the
//! OpenMetrics-only `# EOF` and `# UNIT` lines dropped.

use prometheus_client::registry::Registry;

/// The OpenMetrics exposition of `registry`.
pub fn openmetrics(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The Prometheus text exposition (format 0.0.4) of `registry`.
pub fn prometheus_text(registry: &Registry) -> String {
    openmetrics_to_prometheus_text(&openmetrics(registry))
}

/// Converts an OpenMetrics exposition to the classic text format.
pub fn openmetrics_to_prometheus_text(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_after_their_samples() {
        let om = "# HELP a_b Things.\n# TYPE a_b counter\na_b_total{x=\"1\"} 2\n# UNIT a_b seconds\n# HELP h Latency.\n# TYPE h histogram\nh_count 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus_text(om),
            "# HELP a_b_total Things.\n# TYPE a_b_total counter\na_b_total{x=\"1\"} 2\n# HELP h Latency.\n# TYPE h histogram\nh_count 1\n"
        );
    }
}
