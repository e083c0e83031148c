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
"""
from __future__ import annotations

import ipaddress
import re

import numpy as np
import pyarrow as pa

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

    def mask(self, text: str) -> tuple[str, int, int]:
        """(masked text, e-mails masked, IPs masked) of one text."""
        p = self.params
        ne = ni = 0
        if p.emails and "@" in text:
            text, ne = EMAIL_RE.subn(p.email_replacement, text)
        if p.ips:
            count = [0]

            def sub(m: re.Match) -> str:
                if self._ip_ok(m.group(0)):
                    count[0] += 1
                    return p.ip_replacement
                return m.group(0)

            if "." in text:
                text = IPV4_RE.sub(sub, text)
            if "::" in text or text.count(":") >= 2:
                text = IPV6_RE.sub(sub, text)
            ni = count[0]
        return text, ne, ni

    def process(self, batch: pa.RecordBatch) -> Result:
        texts = batch.column(TEXT).to_pylist()
        n = len(texts)
        emails = np.zeros(n, dtype=np.int32)
        ips = np.zeros(n, dtype=np.int32)
        out = list(texts)
        changed = False
        for i, t in enumerate(texts):
            if not t:
                continue
            nt, ne, ni = self.mask(t)
            if ne or ni:
                out[i] = nt
                emails[i], ips[i] = ne, ni
                changed = True
        if changed:
            batch = set_column(batch, TEXT, pa.array(out, pa.string()))
        batch = set_column(batch, "pii_emails", emails)
        batch = set_column(batch, "pii_ips", ips)
        return Result(batch)
