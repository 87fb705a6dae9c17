"""``[siem]``: where ``trailpipe siem`` writes credentials and which CA signs client
certificates."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class SiemConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    secrets_dir: Path = Field(default=Path("var/siem"), description="one directory per "
                              "subscription with its password or key and certificate, client "
                              "configs and the CA file (files mode 0600)")
    ca_cert: Path | None = Field(default=None, description="PEM CA certificate that signs "
                                 "client certificates and that clients trust; default: the dev "
                                 "cluster's (<dev.state_dir>/tls/ca.pem)")
    ca_key: Path | None = Field(default=None, description="PEM CA private key; default: the "
                                "dev cluster's (<dev.state_dir>/tls/ca.key)")
    client_cert_days: int = Field(default=365, ge=1)
    bootstrap_scram: str | None = Field(default=None, description="bootstrap printed in SCRAM "
                                        "client configs; default: the dev cluster's SASL_SSL "
                                        "listener")
    bootstrap_mtls: str | None = Field(default=None, description="bootstrap printed in mTLS "
                                       "client configs; default: the dev cluster's SSL listener")
