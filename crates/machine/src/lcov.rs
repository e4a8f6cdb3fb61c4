//! Coverage as an lcov tracefile (`rewind analyze coverage --lcov`), for genhtml and the
//! coverage tools that read it. With DWARF line information in the ELF (`.debug_line`), one
//! record per source file: `FN`/`FNDA` for its functions, `DA` for every line the line table
//! knows (hit count: the most any of the line's instructions retired). Without it, one
//! record for the ELF with `FN`/`FNDA` per function (line numbers are then the functions'
//! ranks by address).

use std::borrow::Cow;
use std::collections::BTreeMap;

use gimli::{EndianSlice, LittleEndian};

use crate::analysis::CoverageMap;

/// A function symbol: (address, size, name).
type Func = (u64, u64, String);

/// One row of a line table: instructions from `addr` (to the next row) belong to
/// `(file, line)`; `None` ends a sequence.
type Row = (u64, Option<(String, u64)>);

/// Retired instructions by pc over every privilege level.
fn pcs(cov: &CoverageMap) -> BTreeMap<u64, u64> {
    let mut all = BTreeMap::new();
    for m in cov.counts.values() {
        for (pc, n) in m {
            *all.entry(*pc).or_insert(0) += n;
        }
    }
    all
}

/// The `STT_FUNC` symbols with a size, by address (one name per address).
fn functions(e: &goblin::elf::Elf<'_>) -> Vec<Func> {
    let mut funcs: Vec<Func> = e
        .syms
        .iter()
        .filter(|s| s.st_type() == goblin::elf::sym::STT_FUNC && s.st_size > 0)
        .map(|s| {
            let name = e.strtab.get_at(s.st_name).unwrap_or("?").to_string();
            (s.st_value, s.st_size, name)
        })
        .collect();
    funcs.sort();
    funcs.dedup_by_key(|f| f.0);
    funcs
}

/// Section `name`'s bytes (empty when missing, compressed or out of the file).
fn section<'a>(e: &goblin::elf::Elf<'_>, elf: &'a [u8], name: &str) -> &'a [u8] {
    for sh in &e.section_headers {
        if e.shdr_strtab.get_at(sh.sh_name) != Some(name)
            || sh.sh_type == goblin::elf::section_header::SHT_NOBITS
            || sh.sh_flags & u64::from(goblin::elf::section_header::SHF_COMPRESSED) != 0
        {
            continue;
        }
        let (Ok(off), Ok(len)) = (usize::try_from(sh.sh_offset), usize::try_from(sh.sh_size))
        else {
            continue;
        };
        if let Some(b) = off.checked_add(len).and_then(|end| elf.get(off..end)) {
            return b;
        }
    }
    &[]
}

/// The line table rows of every unit, sorted by address (empty without `.debug_line`).
fn line_rows(e: &goblin::elf::Elf<'_>, elf: &[u8]) -> Result<Vec<Row>, gimli::Error> {
    let dwarf = gimli::Dwarf::load(|id| -> Result<_, gimli::Error> {
        Ok(EndianSlice::new(section(e, elf, id.name()), LittleEndian))
    })?;
    let text = |r: EndianSlice<'_, LittleEndian>| -> String {
        String::from_utf8_lossy(r.slice()).into_owned()
    };
    let mut rows = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let Some(program) = unit.line_program.clone() else {
            continue;
        };
        let comp_dir = unit.comp_dir.map(text);
        let mut names: BTreeMap<u64, String> = BTreeMap::new();
        let mut it = program.rows();
        while let Some((header, row)) = it.next_row()? {
            if row.end_sequence() {
                rows.push((row.address(), None));
                continue;
            }
            let Some(line) = row.line() else {
                continue;
            };
            let index = row.file_index();
            if let std::collections::btree_map::Entry::Vacant(slot) = names.entry(index) {
                let Some(file) = row.file(header) else {
                    continue;
                };
                let name = text(dwarf.attr_string(&unit, file.path_name())?);
                let dir = match file.directory(header) {
                    Some(d) => Some(text(dwarf.attr_string(&unit, d)?)),
                    None => None,
                };
                let mut path = std::path::PathBuf::new();
                for part in [comp_dir.as_deref(), dir.as_deref()].into_iter().flatten() {
                    path.push(part);
                }
                path.push(&name);
                slot.insert(path.to_string_lossy().into_owned());
            }
            let name = names.get(&index).cloned().unwrap_or_default();
            rows.push((row.address(), Some((name, line.get()))));
        }
    }
    rows.sort_by_key(|r| r.0);
    Ok(rows)
}

/// `s` as lcov writes names (no newlines or commas in a record).
fn clean(s: &str) -> Cow<'_, str> {
    if s.contains(['\n', '\r', ',']) {
        Cow::Owned(s.replace(['\n', '\r', ','], "_"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The lcov tracefile of coverage `cov` with the symbols (and line table, if any) of the ELF
/// `elf`, named `elf_name` in a record without line information. A malformed ELF or line
/// table is an error naming the problem.
pub fn lcov(cov: &CoverageMap, elf: &[u8], elf_name: &str) -> Result<String, String> {
    let e = goblin::elf::Elf::parse(elf).map_err(|e| format!("not a usable ELF: {e}"))?;
    let funcs = functions(&e);
    let hits = pcs(cov);
    // Times a function ran: the count at its entry (at least 1 when its body retired any).
    let runs = |f: &Func| -> u64 {
        let entry = hits.get(&f.0).copied().unwrap_or(0);
        let any = hits.range(f.0..f.0.saturating_add(f.1)).next().is_some();
        entry.max(u64::from(any))
    };
    let rows = line_rows(&e, elf).map_err(|e| format!("bad DWARF line information: {e}"))?;
    let mut out = String::from("TN:rewind\n");
    if rows.is_empty() {
        out.push_str(&format!("SF:{}\n", clean(elf_name)));
        let mut hit = 0;
        for (k, f) in funcs.iter().enumerate() {
            out.push_str(&format!("FN:{},{}\n", k + 1, clean(&f.2)));
        }
        for f in &funcs {
            let n = runs(f);
            hit += u64::from(n > 0);
            out.push_str(&format!("FNDA:{n},{}\n", clean(&f.2)));
        }
        out.push_str(&format!("FNF:{}\nFNH:{hit}\nend_of_record\n", funcs.len()));
        return Ok(out);
    }
    // Per file: line -> hits, and the functions that start in it.
    let mut files: BTreeMap<String, BTreeMap<u64, u64>> = BTreeMap::new();
    for (k, (addr, at)) in rows.iter().enumerate() {
        let Some((file, line)) = at else {
            continue;
        };
        let next = rows
            .get(k + 1)
            .map_or(addr.saturating_add(4), |r| r.0)
            .max(*addr);
        let n = hits.range(*addr..next).map(|(_, n)| *n).max().unwrap_or(0);
        let e = files
            .entry(file.clone())
            .or_default()
            .entry(*line)
            .or_insert(0);
        *e = (*e).max(n);
    }
    let line_at = |addr: u64| -> Option<&(String, u64)> {
        let i = rows.partition_point(|r| r.0 <= addr);
        rows[..i].last().and_then(|r| r.1.as_ref())
    };
    let mut in_file: BTreeMap<String, Vec<(u64, &Func)>> = BTreeMap::new();
    for f in &funcs {
        if let Some((file, line)) = line_at(f.0) {
            in_file.entry(file.clone()).or_default().push((*line, f));
        }
    }
    for (file, lines) in &files {
        out.push_str(&format!("SF:{}\n", clean(file)));
        let fs = in_file.get(file).map(Vec::as_slice).unwrap_or_default();
        for (line, f) in fs {
            out.push_str(&format!("FN:{line},{}\n", clean(&f.2)));
        }
        let mut fhit = 0;
        for (_, f) in fs {
            let n = runs(f);
            fhit += u64::from(n > 0);
            out.push_str(&format!("FNDA:{n},{}\n", clean(&f.2)));
        }
        out.push_str(&format!("FNF:{}\nFNH:{fhit}\n", fs.len()));
        for (line, n) in lines {
            out.push_str(&format!("DA:{line},{n}\n"));
        }
        let lh = lines.values().filter(|n| **n > 0).count();
        out.push_str(&format!("LF:{}\nLH:{lh}\nend_of_record\n", lines.len()));
    }
    Ok(out)
}
