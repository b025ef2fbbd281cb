"""The text network families (#19): `text-transformer` (generator, kdgan.tasks.text.transformer)
and `token-cnn` (discriminator, kdgan.tasks.text.discriminator). Their config sections leave
out what the data decides: the vocabulary and the tokenizer come from the run's tokenizer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kdgan.families import Family
from kdgan.registry import DISCRIMINATORS, GENERATORS
from kdgan.schema import Strict
from kdgan.tasks.text.discriminator import TokenDiscriminator, TokenDiscriminatorSpec
from kdgan.tasks.text.prune import prune_transformer
from kdgan.tasks.text.transformer import TextTransformer, TransformerSpec


class TransformerConfig(Strict):
    """model.generator for arch text-transformer (width 256, 3 + 3 layers: 7.6M parameters
    with an 8,000-token vocabulary)."""

    arch: Literal["text-transformer"] = "text-transformer"
    width: int = Field(256, ge=8)
    heads: int = Field(4, ge=1)
    encoder_layers: int = Field(3, ge=1)
    decoder_layers: int = Field(3, ge=1)
    expansion: int = Field(4, ge=1)
    max_len: int = Field(128, ge=4)  # tokens of a sentence with BOS and EOS
    dropout: float = Field(0.1, ge=0, lt=1)


class TokenDiscriminatorConfig(Strict):
    arch: Literal["token-cnn"] = "token-cnn"
    width: int = Field(128, ge=4)


GENERATORS.register("text-transformer", Family(build=TextTransformer, spec=TransformerSpec, config=TransformerConfig,
                                               prune=prune_transformer, modality="text"))
DISCRIMINATORS.register("token-cnn", Family(build=TokenDiscriminator, spec=TokenDiscriminatorSpec,
                                            config=TokenDiscriminatorConfig, modality="text"))
