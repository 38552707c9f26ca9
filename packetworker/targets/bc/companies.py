"""Which Business Central company a packet goes to (`BC_COMPANY_MAP`), pure.

The pull list names each packet's company in `companyId`: a company *name* such as
`BIOTRADE_COSM`, not the GUID API v2.0 URLs take (dynamics-mobile.md §3.2.1). `BC_COMPANY_MAP`
(`DMCOMPANY=BC company id or name,…`) maps those names to BC companies:

- an empty map sends every packet to `BC_COMPANY` (one company, as before);
- with a map, a mapped `companyId` goes to its company; an unmapped one goes nowhere (the
  packet is held with a reason) rather than to a guessed company (ibid.: "park packets whose
  `companyId` matches no configured company rather than guessing");
- a packet without a `companyId` (a replayed file without metadata) goes to `BC_COMPANY`, as
  the vendor's proxy falls back to a per-app-area default company (ibid.).

The outbound side uses the same map the other way round (`dm_companies`): which mobile
companies a BC company's master data belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: `CompanyMap.route` answer: the packet goes to the target's default client (`BC_COMPANY`).
DEFAULT = ""


@dataclass(frozen=True, slots=True)
class CompanyMap:
    """Mobile company (`companyId`) → BC company id or name; keys compare case-insensitively
    (the vendor's connector compares company names that way, dynamics-mobile.md §3.2.1)."""

    companies: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> CompanyMap:
        """`"ACME_MAIN=CRONUS, ACME_EU=CRONUS EU"` → a map (ValueError naming a bad entry)."""
        companies: dict[str, str] = {}
        for pair in (part.strip() for part in text.split(",")):
            if not pair:
                continue
            dm, sep, bc = (s.strip() for s in pair.partition("="))
            if not sep or not dm or not bc:
                raise ValueError(f"BC_COMPANY_MAP entry {pair!r} is not DMCOMPANY=BC company")
            if dm.lower() in companies:
                raise ValueError(f"BC_COMPANY_MAP names {dm!r} twice")
            companies[dm.lower()] = bc
        return cls(companies)

    def __bool__(self) -> bool:
        return bool(self.companies)

    def route(self, company_id: str | None) -> str | None:
        """The BC company for a packet's `companyId`: `DEFAULT` for `BC_COMPANY`, a company
        id or name, or None when the map names others but not this one (hold the packet)."""
        if not self.companies or not company_id or not company_id.strip():
            return DEFAULT
        return self.companies.get(company_id.strip().lower())

    def dm_companies(self, bc_company: str) -> list[str]:
        """The mobile companies (lower-cased `companyId`s) mapped to `bc_company` (id or name,
        as written in the map); for outbound pushes that name their company."""
        wanted = bc_company.strip().lower()
        return sorted(dm for dm, bc in self.companies.items() if bc.lower() == wanted)


def unmapped_reason(company_id: str) -> str:
    """Why a packet of an unmapped company waits (what the ledger and `status` show)."""
    return f"company {company_id} is not in BC_COMPANY_MAP"
