"""PII masking: e-mail addresses and IP addresses in `text` are replaced by tokens; nothing is dropped.

- E-mail: an ASCII local part (letters, digits, . _ % + -) not glued to a preceding such character,
  '@', then a dotted host name whose last label is 2-24 letters (so "user@localhost" and
  "@handles" are left alone).
- IPv4: four dotted decimal octets 0-255 that are not part of a longer dotted run of numbers
  ("1.2.3.4.5", "v10.0.0.1.2"), not glued to letters/digits, without leading zeros (so version
  strings such as "01.02.03.04" are not taken for addresses). Addresses whose four octets are
  single digits ("1.2.1.9", section numbers in real text; 8.8.8.8 is a resolver, not a person)
  are kept.
- IPv6: a colon-hex run that Python's `ipaddress` accepts, with at least three non-empty groups,
  not glued to word characters; clock times like "12:30:45" fail validation and "a::b" (C++)
  has too few groups. Public means global unicast (2000::/3) and `is_global`.
- Private, loopback, link-local, multicast, reserved and documentation addresses (anything
  `ipaddress` says is not global) are kept unless `mask_private_ips`: they identify nobody and
  often appear in technical text (as datatrove's `only_remove_public_ips`).

Signals: `pii_emails`, `pii_ips` (matches masked per document).

The patterns need Python's `re` (look-behinds, a validation per match). A batch first asks Arrow
which documents could hold a match at all (`CANDIDATE_RES`: what every match of each pattern
contains, one RE2 pass over the batch), and only those go through Python, line by line and only
the lines with a '@', a '.' or two ':' (no match spans a line: "\n" is in none of the patterns, and
the look-arounds treat it as they treat the text's ends). Most pages have no '@' before a host
name, no four dotted numbers and no ':hex:' run.
"""
from __future__ import annotations

import ipaddress
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.documents import TEXT, set_column
from engine.operator import Operator, Params, Resources, Result, register

EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
IPV4_RE = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?!\w|\.\d)")
IPV6_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}|:)?(?::[0-9A-Fa-f]{0,4}){2,7}"
    r"(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?![\w:]|\.\d)")

_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
#: What every match of each pattern contains (RE2 syntax, ASCII classes as the patterns'): a local-part
#: character, '@', a host character; four dotted runs of 1-3 digits; two colons with 0-4 hex digits between.
CANDIDATE_RES = {"emails": r"[A-Za-z0-9_%+\-]@[A-Za-z0-9]",
                 "ipv4": r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}",
                 "ipv6": r":[0-9A-Fa-f]{0,4}:"}


class PIIParams(Params):
    emails: bool = True
    ips: bool = True
    email_replacement: str = "<EMAIL>"
    ip_replacement: str = "<IP_ADDRESS>"
    mask_private_ips: bool = False


@register
class PII(Operator):
    name = "pii"
    inputs = (TEXT,)
    outputs = ("pii_emails", "pii_ips")
    resources = Resources(cpus=1.0, memory_mb=256)
    Params = PIIParams

    def _ip_ok(self, s: str) -> bool:
        if ":" in s and sum(1 for g in s.split(":") if g) < 3:
            return False            # "a::b", "fe80::1", "::1": code or local, never masked
        if "." in s and ":" not in s and len(s) == 7:
            return False            # "1.2.1.9": section numbers; all-one-digit IPs identify nobody
        try:
            ip = ipaddress.ip_address(s)
        except ValueError:
            return False
        if self.params.mask_private_ips:
            return True
        if ip.version == 6:
            return ip in _GLOBAL_UNICAST_V6 and ip.is_global
        return ip.is_global

    def mask(self, text: str, may_hold: frozenset[str] = frozenset(CANDIDATE_RES)) -> tuple[str, int, int]:
        """(masked text, e-mails masked, IPs masked) of one text; `may_hold`: the `CANDIDATE_RES` it
        matches (a pattern whose candidate test fails cannot match)."""
        p = self.params
        ne = ni = 0
        if p.emails and "emails" in may_hold and "@" in text:
            text, ne = EMAIL_RE.subn(p.email_replacement, text)
        if p.ips:
            count = [0]

            def sub(m: re.Match) -> str:
                if self._ip_ok(m.group(0)):
                    count[0] += 1
                    return p.ip_replacement
                return m.group(0)

            if "ipv4" in may_hold and "." in text:
                text = IPV4_RE.sub(sub, text)
            if "ipv6" in may_hold and ("::" in text or text.count(":") >= 2):
                text = IPV6_RE.sub(sub, text)
            ni = count[0]
        return text, ne, ni

    def candidates(self, text: pa.Array) -> dict[str, np.ndarray]:
        """Per pattern the values that may hold a match of it (a superset: the others hold none)."""
        names = ([] if not self.params.emails else ["emails"]) + ([] if not self.params.ips else ["ipv4", "ipv6"])
        return {name: pc.fill_null(pc.match_substring_regex(text, CANDIDATE_RES[name]), False).to_numpy(
            zero_copy_only=False) for name in names}

    def mask_lines(self, text: str, may_hold: frozenset[str]) -> tuple[str, int, int]:
        """`mask` line by line, on the lines that can hold a match; the same result."""
        lines = text.split("\n")
        ne = ni = 0
        for j, line in enumerate(lines):
            if "@" in line or "." in line or ":" in line:
                lines[j], e, i = self.mask(line, may_hold)
                ne, ni = ne + e, ni + i
        return ("\n".join(lines) if ne or ni else text), ne, ni

    def process(self, batch: pa.RecordBatch) -> Result:
        column = batch.column(TEXT)
        n = len(column)
        emails = np.zeros(n, dtype=np.int32)
        ips = np.zeros(n, dtype=np.int32)
        candidates = self.candidates(column)
        rows = np.zeros(n, dtype=bool)
        for mask in candidates.values():
            rows |= mask
        changed: dict[int, str] = {}
        for i in np.flatnonzero(rows).tolist():
            nt, ne, ni = self.mask_lines(column[i].as_py(), frozenset(k for k, m in candidates.items() if m[i]))
            if ne or ni:
                changed[i] = nt
                emails[i], ips[i] = ne, ni
        if changed:
            out = column.to_pylist()
            for i, nt in changed.items():
                out[i] = nt
            batch = set_column(batch, TEXT, pa.array(out, pa.string()))
        batch = set_column(batch, "pii_emails", emails)
        batch = set_column(batch, "pii_ips", ips)
        return Result(batch)
