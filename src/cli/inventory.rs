//! `augur inventory`: reads the switch's OVSDB once and prints what augur
//! would enforce on: bridges, their ports, and the VMs with their
//! interfaces, addresses and labels, then anything in the database it had to
//! leave out.
//!
//! `--json` prints the inventory in the form `Inventory` reads back (so the
//! output can serve as an inventory file) with one more member, `warnings`.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use augur::inventory::ovsdb::DEFAULT_TARGET;
use augur::inventory::{Built, Inventory, InventorySettings, InventoryWarning, InventoryWatcher};
use augur_ovsdb::client::{ClientConfig, TlsConfig};
use serde::Serialize;

/// Arguments of `augur inventory`.
#[derive(Debug, clap::Args)]
pub struct InventoryArgs {
    /// The switch's database, as `ovs-vsctl --db` takes it: unix:PATH,
    /// tcp:HOST:PORT, ssl:HOST:PORT.
    #[arg(long, value_name = "TARGET", default_value = DEFAULT_TARGET)]
    pub db: String,
    /// Print JSON: the inventory, plus a `warnings` list.
    #[arg(long)]
    pub json: bool,
    /// Take labels, addresses and the VM id keys from the `[inventory]`
    /// table of this TOML file (the daemon's config file).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Give up after this many seconds without a complete inventory.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub timeout: u64,
    /// Private key for ssl: targets (PEM, as `ovs-pki` makes it).
    #[arg(long, value_name = "FILE", requires_all = ["certificate", "ca_cert"])]
    pub private_key: Option<PathBuf>,
    /// Certificate for ssl: targets.
    #[arg(long, value_name = "FILE", requires_all = ["private_key", "ca_cert"])]
    pub certificate: Option<PathBuf>,
    /// CA certificate the server's certificate must chain to, for ssl: targets.
    #[arg(long, value_name = "FILE", requires_all = ["private_key", "certificate"])]
    pub ca_cert: Option<PathBuf>,
}

/// Runs `augur inventory`.
pub fn run(args: &InventoryArgs) -> anyhow::Result<()> {
    let settings = match &args.config {
        Some(path) => read_settings(path)?,
        None => InventorySettings::default(),
    };
    let mut config = ClientConfig::new(&args.db).map_err(|e| anyhow!("--db {}: {e}", args.db))?;
    if let (Some(private_key), Some(certificate), Some(ca_cert)) =
        (&args.private_key, &args.certificate, &args.ca_cert)
    {
        config = config.with_tls(TlsConfig {
            private_key: private_key.clone(),
            certificate: certificate.clone(),
            ca_cert: ca_cert.clone(),
        });
    } else if config.targets.iter().any(|t| t.is_ssl()) {
        anyhow::bail!(
            "{} needs --private-key, --certificate and --ca-cert",
            args.db
        );
    }
    let timeout = Duration::from_secs(args.timeout);
    config.connect_timeout = config.connect_timeout.min(timeout);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let built = runtime.block_on(async {
        match tokio::time::timeout(timeout, InventoryWatcher::connect_with(config, settings)).await
        {
            Ok(Ok(watcher)) => Ok(watcher.current().clone()),
            // The error already carries its causes in its message.
            Ok(Err(e)) => Err(anyhow!("{e}")),
            Err(_) => Err(anyhow!(
                "no complete inventory from {} within {} s",
                args.db,
                args.timeout
            )),
        }
    })?;

    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &JsonOutput::from(&built))?;
        writeln!(out)?;
    } else {
        out.write_all(render(&built).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// The `[inventory]` table of a TOML config file.
fn read_settings(path: &Path) -> anyhow::Result<InventorySettings> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut document: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), one_line(&e)))?;
    let settings: InventorySettings = match document.remove("inventory") {
        Some(table) => table.try_into().map_err(|e: toml::de::Error| {
            anyhow!("{}: [inventory]: {}", path.display(), one_line(&e))
        })?,
        None => InventorySettings::default(),
    };
    settings
        .validate()
        .map_err(|e| anyhow!("{}: [inventory]: {e}", path.display()))?;
    Ok(settings)
}

/// A TOML error's message without the source excerpt it spreads over lines.
fn one_line(e: &toml::de::Error) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(_) => e
            .to_string()
            .lines()
            .next()
            .map_or_else(|| message.to_owned(), |first| format!("{first}: {message}")),
        None => message.to_owned(),
    }
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    #[serde(flatten)]
    inventory: &'a Inventory,
    warnings: &'a [InventoryWarning],
}

impl<'a> From<&'a Built> for JsonOutput<'a> {
    fn from(built: &'a Built) -> Self {
        Self {
            inventory: &built.inventory,
            warnings: &built.warnings,
        }
    }
}

/// The inventory for people: per bridge its ports (what each one is), then
/// the VMs, then the warnings.
fn render(built: &Built) -> String {
    let inventory = &built.inventory;
    let mut out = String::new();
    if inventory.bridges.is_empty() {
        out.push_str("no bridges\n");
    }
    for bridge in &inventory.bridges {
        let _ = writeln!(
            out,
            "bridge {} (datapath id {:016x})",
            bridge.name, bridge.datapath_id
        );
        let mut rows: Vec<(u32, [String; 4])> = Vec::new();
        for port in inventory.external_ports_on(&bridge.name) {
            let what = if port.is_local() { "local" } else { "external" };
            let mac = port.mac.map(|m| m.to_string()).unwrap_or_default();
            rows.push((
                port.ofport.0,
                [port.ofport.to_string(), port.name.clone(), what.into(), mac],
            ));
        }
        for (vm, iface) in inventory.interfaces_on(&bridge.name) {
            rows.push((
                iface.ofport.0,
                [
                    iface.ofport.to_string(),
                    iface.name.clone(),
                    format!("vm {}", vm.id),
                    iface.mac.to_string(),
                ],
            ));
        }
        rows.sort_by_key(|(n, _)| *n);
        let cells: Vec<[String; 4]> = rows.into_iter().map(|(_, cells)| cells).collect();
        table(&mut out, "  port ", &cells);
    }
    if !inventory.vms.is_empty() {
        out.push('\n');
    }
    for vm in &inventory.vms {
        let labels: Vec<String> = vm.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            out,
            "vm {}{}{}",
            vm.id,
            if labels.is_empty() { "" } else { "  " },
            labels.join(" ")
        );
        let cells: Vec<[String; 4]> = vm
            .interfaces
            .iter()
            .map(|i| {
                let ips: Vec<String> = i.ips.iter().map(ToString::to_string).collect();
                [
                    format!("{}:{}", i.bridge, i.ofport),
                    i.name.clone(),
                    i.mac.to_string(),
                    if ips.is_empty() {
                        "(no addresses)".into()
                    } else {
                        ips.join(" ")
                    },
                ]
            })
            .collect();
        table(&mut out, "  ", &cells);
    }
    if !built.warnings.is_empty() {
        out.push('\n');
        for warning in &built.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
    }
    out
}

/// Rows of cells in aligned columns; the last column is not padded.
fn table(out: &mut String, indent: &str, rows: &[[String; 4]]) {
    let mut widths = [0usize; 4];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::from(indent);
        for (n, (cell, width)) in row.iter().zip(widths).enumerate() {
            if n + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Built {
        let inventory: Inventory = serde_json::from_str(
            r#"{
              "bridges": [{"name": "br-int", "datapath_id": 3054}],
              "vms": [
                {"id": "web-1", "labels": {"tier": "web", "tenant": "blue"},
                 "interfaces": [{"bridge": "br-int", "name": "vnet0", "ofport": 3,
                                 "mac": "52:54:00:00:00:01", "ips": ["10.0.0.11", "2001:db8::11"]}]},
                {"id": "db-1",
                 "interfaces": [{"bridge": "br-int", "name": "vnet1", "ofport": 4,
                                 "mac": "52:54:00:00:00:02"}]}
              ],
              "external_ports": [
                {"bridge": "br-int", "name": "br-int", "ofport": "LOCAL", "mac": "02:00:00:00:00:fe"},
                {"bridge": "br-int", "name": "eth1", "ofport": 1}
              ]
            }"#,
        )
        .unwrap();
        Built {
            inventory,
            warnings: vec![InventoryWarning {
                bridge: Some("br-int".into()),
                interface: Some("vnet9".into()),
                key: Some("external_ids:attached-mac".into()),
                message: "\"x\" is not a MAC address; ignored".into(),
            }],
        }
    }

    #[test]
    fn text_output() {
        assert_eq!(
            render(&sample()),
            "bridge br-int (datapath id 0000000000000bee)\n\
             \x20 port 1      eth1    external\n\
             \x20 port 3      vnet0   vm web-1  52:54:00:00:00:01\n\
             \x20 port 4      vnet1   vm db-1   52:54:00:00:00:02\n\
             \x20 port LOCAL  br-int  local     02:00:00:00:00:fe\n\
             \n\
             vm web-1  tenant=blue tier=web\n\
             \x20 br-int:3  vnet0  52:54:00:00:00:01  10.0.0.11 2001:db8::11\n\
             vm db-1\n\
             \x20 br-int:4  vnet1  52:54:00:00:00:02  (no addresses)\n\
             \n\
             warning: bridge br-int, interface vnet9, external_ids:attached-mac: \"x\" is not a MAC address; ignored\n"
        );
        assert_eq!(render(&Built::default()), "no bridges\n");
    }

    #[test]
    fn json_output_reads_back_as_an_inventory() {
        let built = sample();
        let json = serde_json::to_string(&JsonOutput::from(&built)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["warnings"][0]["interface"], "vnet9");
        assert_eq!(value["vms"][0]["interfaces"][0]["name"], "vnet0");
        let back: Inventory = serde_json::from_str(&json).unwrap();
        assert_eq!(back, built.inventory);
    }

    #[test]
    fn settings_come_from_the_inventory_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("augur.toml");
        std::fs::write(
            &path,
            "[listen]\ntcp = \"127.0.0.1:6653\"\n\
             [inventory]\novsdb = \"unix:/x\"\nvm_id_keys = [\"iface-id\"]\n\
             [inventory.vms.a]\nlabels = { tier = \"web\" }\n",
        )
        .unwrap();
        let settings = read_settings(&path).unwrap();
        assert_eq!(settings.vm_id_keys, ["iface-id"]);
        assert_eq!(settings.vms[&"a".into()].labels["tier"], "web");

        std::fs::write(
            &path,
            "[inventory.vms.a]\nlabels = { \"no good\" = \"x\" }\n",
        )
        .unwrap();
        let e = read_settings(&path).unwrap_err().to_string();
        assert!(e.ends_with("[inventory]: inventory setting vms.a.labels.\"no good\": label name \"no good\" must be ASCII letters, digits, '-', '_' and '.', starting and ending with a letter or digit"), "{e}");

        std::fs::write(&path, "[inventory]\nvm_id_keys = \"vm-id\"\n").unwrap();
        let e = read_settings(&path).unwrap_err().to_string();
        assert!(e.contains("invalid type"), "{e}");
        assert!(!e.contains('\n'), "{e}");

        std::fs::write(&path, "[inventory\n").unwrap();
        let e = read_settings(&path).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
