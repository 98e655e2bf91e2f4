"""License terms as an ODRL 2.2 Agreement (JSON-LD), and back. No Django.

Mapping (ClearStem profile, `cs:` terms for what ODRL's vocabulary lacks):
- separating stems is `odrl:derive`, refined by `cs:stem`; its cap is a `count` constraint;
- downloading/exporting is `odrl:reproduce` with its own `count` cap;
- validity is `dateTime` (gteq / lt), territories `spatial` (isAnyOf, or isNoneOf for
  worldwide-minus-exclusions), purposes `purpose` (isAnyOf);
- commercial use is a permission to `odrl:commercialize`, or a prohibition of it;
- duties: `odrl:attribute` (with the attribution text) and `odrl:compensate` (percentage).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from .engine import WORLDWIDE, Terms

CONTEXT = ["http://www.w3.org/ns/odrl.jsonld", {"cs": "https://clearstem.dev/ns/odrl#"}]
PROFILE = "https://clearstem.dev/ns/odrl-profile/v1"


def _dt(value: datetime) -> dict:
    return {"@value": value.isoformat(), "@type": "xsd:dateTime"}


def to_odrl(terms: Terms, *, assigner: str, assignee: str | None, recordings: list[dict]) -> dict:
    """`recordings`: [{"id": ..., "isrc": ...}]; assignee None = open to verified producers."""
    target = {"@type": "AssetCollection", "uid": f"urn:clearstem:license:{terms.grant_id}:assets",
              "source": [f"urn:isrc:{r['isrc']}" if r.get("isrc") else f"urn:clearstem:recording:{r['id']}"
                         for r in recordings]}
    common = []
    if terms.valid_from:
        common.append({"leftOperand": "dateTime", "operator": "gteq", "rightOperand": _dt(terms.valid_from)})
    if terms.valid_until:
        common.append({"leftOperand": "dateTime", "operator": "lt", "rightOperand": _dt(terms.valid_until)})
    if WORLDWIDE in terms.territories:
        if terms.excluded_territories:
            common.append({"leftOperand": "spatial", "operator": "isNoneOf",
                           "rightOperand": sorted(terms.excluded_territories)})
    else:
        common.append({"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": sorted(terms.territories)})
    common.append({"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": sorted(terms.purposes)})

    def capped(cap, per_user):
        out = []
        if cap is not None:
            out.append({"leftOperand": "count", "operator": "lteq", "rightOperand": cap})
        if per_user is not None:
            out.append({"leftOperand": "count", "operator": "lteq", "rightOperand": per_user,
                        "cs:scope": "per-assignee-user"})
        return out

    duties = []
    if terms.attribution:
        duties.append({"action": "attribute", "cs:text": terms.attribution})
    if Decimal(terms.revenue_share_pct) != 0:
        duties.append({"action": [{"rdf:value": {"@id": "odrl:compensate"}, "refinement": [
            {"leftOperand": "percentage", "operator": "eq", "rightOperand": terms.revenue_share_pct}]}]})
    derive = {"target": target, "action": [{"rdf:value": {"@id": "odrl:derive"}, "refinement": [
        {"leftOperand": "cs:stem", "operator": "isAnyOf", "rightOperand": sorted(terms.stems)}]}],
        "constraint": common + capped(terms.max_separations, terms.max_separations_per_user), "duty": duties}
    reproduce = {"target": target, "action": "reproduce",
                 "constraint": common + capped(terms.max_downloads, terms.max_downloads_per_user), "duty": duties}
    permissions = [derive, reproduce]
    prohibitions = []
    commercialize = {"target": target, "action": "commercialize"}
    (permissions if terms.commercial else prohibitions).append(commercialize)
    agreement = {
        "@context": CONTEXT, "@type": "Agreement", "profile": PROFILE,
        "uid": f"urn:clearstem:license:{terms.grant_id}:v{terms.version}",
        "cs:version": terms.version, "cs:status": terms.status,
        "assigner": {"@type": "Party", "uid": f"urn:clearstem:org:{assigner}"},
        "assignee": ({"@type": "Party", "uid": f"urn:clearstem:org:{assignee}"} if assignee
                     else {"@type": "PartyCollection", "uid": "urn:clearstem:verified-producers"}),
        "permission": permissions,
    }
    if prohibitions:
        agreement["prohibition"] = prohibitions
    return agreement


def from_odrl(doc: dict) -> Terms:
    """Read back what `to_odrl` wrote (the round trip is tested); raises ValueError otherwise."""
    if doc.get("@type") != "Agreement" or doc.get("profile") != PROFILE:
        raise ValueError("not a ClearStem ODRL agreement")
    uid = doc["uid"]  # urn:clearstem:license:<id>:v<version>
    grant_id = uid.split(":")[3]
    perms = {(_action(p)): p for p in doc["permission"]}
    derive, reproduce = perms["derive"], perms["reproduce"]
    stems = next(r["rightOperand"] for r in derive["action"][0]["refinement"] if r["leftOperand"] == "cs:stem")
    fields = {"valid_from": None, "valid_until": None, "territories": [WORLDWIDE], "excluded": []}
    for c in derive["constraint"]:
        op, value = c["operator"], c["rightOperand"]
        if c["leftOperand"] == "dateTime":
            fields["valid_from" if op == "gteq" else "valid_until"] = datetime.fromisoformat(value["@value"])
        elif c["leftOperand"] == "spatial":
            if op == "isAnyOf":
                fields["territories"] = value
            else:
                fields["excluded"] = value
        elif c["leftOperand"] == "purpose":
            fields["purposes"] = value

    def caps(perm):
        overall = per_user = None
        for c in perm["constraint"]:
            if c["leftOperand"] == "count":
                if c.get("cs:scope") == "per-assignee-user":
                    per_user = c["rightOperand"]
                else:
                    overall = c["rightOperand"]
        return overall, per_user

    max_sep, max_sep_user = caps(derive)
    max_dl, max_dl_user = caps(reproduce)
    attribution, share = "", "0.00"
    for duty in derive.get("duty", []):
        if duty["action"] == "attribute":
            attribution = duty["cs:text"]
        else:
            share = duty["action"][0]["refinement"][0]["rightOperand"]
    return Terms(
        grant_id=grant_id, version=int(doc["cs:version"]), status=doc["cs:status"], stems=frozenset(stems),
        purposes=frozenset(fields["purposes"]), commercial="commercialize" in perms,
        territories=frozenset(fields["territories"]), excluded_territories=frozenset(fields["excluded"]),
        valid_from=fields["valid_from"], valid_until=fields["valid_until"],
        max_separations=max_sep, max_downloads=max_dl, max_separations_per_user=max_sep_user,
        max_downloads_per_user=max_dl_user, attribution=attribution, revenue_share_pct=share,
    )


def _action(perm: dict) -> str:
    action = perm["action"]
    if isinstance(action, list):
        return action[0]["rdf:value"]["@id"].split(":")[-1]
    return action
