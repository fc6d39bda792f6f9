"""Registered key-issuer services (``Key-Issuer-Id``), as self-hosted NVCF registers them."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth.scopes import FUNCTIONS_PRODUCT, TASKS_PRODUCT


@dataclass(frozen=True, slots=True)
class IssuerService:
    id: str
    name: str
    product: str

    def dto(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "product": self.product}


FUNCTIONS_SERVICE = IssuerService("nvidia-cloud-functions-ncp-service-id-aketm", "nvcf-api", FUNCTIONS_PRODUCT)
TASKS_SERVICE = IssuerService("nvidia-cloud-tasks-ncp-service-id-nvcttasks", "nvct-api", TASKS_PRODUCT)

ISSUERS: dict[str, IssuerService] = {s.id: s for s in (FUNCTIONS_SERVICE, TASKS_SERVICE)}

# Evaluation namespaces → the product whose policy they evaluate.
NAMESPACE_PRODUCTS: dict[str, str] = {"nvcf": FUNCTIONS_PRODUCT, "nvct": TASKS_PRODUCT}
