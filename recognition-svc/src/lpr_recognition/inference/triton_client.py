"""Plate recognition through Triton Inference Server, over its aio gRPC client.

One ``TritonRecognizer`` per process, opened in the application's lifespan. Every call
carries a timeout; every Triton failure surfaces as ``RecognitionUnavailable`` so the
caller keeps the read pending and retries later.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

import numpy as np
import numpy.typing as npt
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from lpr_recognition.inference.errors import RecognitionUnavailable
from lpr_recognition.inference.pipeline import (
    ALPHABET_PARAMETER,
    PipelineSettings,
    PlatePipeline,
    PlateResult,
    pipeline_models,
)

# Models the default pipeline calls.
MODELS = pipeline_models()


class TritonRecognizer:
    """Reads plates in images with the detector and OCR models served by Triton."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        max_concurrency: int = 4,
        settings: PipelineSettings | None = None,
    ) -> None:
        """Configure the recognizer; ``open`` connects.

        Args:
            url: Triton's gRPC ``host:port``.
            timeout_s: Deadline of each call to Triton.
            max_concurrency: Images recognized at the same time; more wait their turn.
            settings: Pipeline thresholds.
        """
        self.url = url
        self.timeout_s = timeout_s
        self._settings = settings or PipelineSettings()
        self.models = pipeline_models(self._settings)
        self._limit = asyncio.Semaphore(max_concurrency)
        self._client: InferenceServerClient | None = None
        self._pipeline: PlatePipeline | None = None

    async def open(self) -> None:
        """Create the gRPC client (connections are made on first use)."""
        if self._client is None:
            self._client = InferenceServerClient(url=self.url)

    async def close(self) -> None:
        """Close the gRPC client."""
        client, self._client, self._pipeline = self._client, None, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> TritonRecognizer:
        """Open the client."""
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the client."""
        await self.close()

    @property
    def client(self) -> InferenceServerClient:
        """The open client.

        Raises:
            RuntimeError: ``open`` was not called.
        """
        if self._client is None:
            raise RuntimeError("TritonRecognizer is not open")
        return self._client

    async def is_ready(self) -> bool:
        """Whether the server is up and every model the pipeline uses is ready."""
        try:
            if not await self.client.is_server_ready(client_timeout=self.timeout_s):
                return False
            for model in self.models:
                if not await self.client.is_model_ready(model, client_timeout=self.timeout_s):
                    return False
        except InferenceServerException:
            return False
        return True

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until ``is_ready``.

        Raises:
            RecognitionUnavailable: Not ready within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while not await self.is_ready():
            if time.monotonic() >= deadline:
                raise RecognitionUnavailable(f"Triton at {self.url} not ready within {timeout_s} s")
            await asyncio.sleep(0.5)

    async def infer(
        self, model: str, inputs: Mapping[str, npt.NDArray[np.generic]], outputs: Sequence[str]
    ) -> dict[str, npt.NDArray[np.generic]]:
        """Run one model on Triton.

        Raises:
            RecognitionUnavailable: Triton is unreachable, timed out or failed.
        """
        request: list[InferInput] = []
        for name, array in inputs.items():
            tensor = InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(np.ascontiguousarray(array))
            request.append(tensor)
        try:
            result = await self.client.infer(
                model,
                request,
                outputs=[InferRequestedOutput(name) for name in outputs],
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as error:
            raise RecognitionUnavailable(f"Triton model {model} failed: {error}") from error
        arrays: dict[str, npt.NDArray[np.generic]] = {}
        for name in outputs:
            array = result.as_numpy(name)
            if array is None:
                raise RecognitionUnavailable(f"Triton model {model} returned no {name}")
            arrays[name] = array
        return arrays

    async def _get_pipeline(self) -> PlatePipeline:
        """The pipeline, built once the recognizer's alphabet is read from its config."""
        if self._pipeline is None:
            try:
                response = await self.client.get_model_config(
                    self._settings.text_recognizer, as_json=True, client_timeout=self.timeout_s
                )
            except InferenceServerException as error:
                raise RecognitionUnavailable(f"Triton at {self.url}: {error}") from error
            parameter = response["config"]["parameters"][ALPHABET_PARAMETER]["string_value"]
            alphabet = {int(index): char for index, char in json.loads(parameter).items()}
            self._pipeline = PlatePipeline(self, alphabet, self._settings)
        return self._pipeline

    async def recognize(self, image_bytes: bytes, region: str | None = None) -> list[PlateResult]:
        """Find and read every plate in a JPEG or PNG image, best first.

        Args:
            image_bytes: The encoded image.
            region: Jurisdiction of the camera (``"us"``, ...) whose plate rules apply.

        Raises:
            InvalidImage: The bytes are not an image.
            RecognitionUnavailable: Triton is unreachable, timed out or failed.
        """
        async with self._limit:
            pipeline = await self._get_pipeline()
            return await pipeline.recognize(image_bytes, region)
