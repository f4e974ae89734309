"""The dmitems bench operation mix, for Locust (many machines: master/worker mode).

Same routes, same weights and the same row discipline as ``dmitems bench
--target http``: every user creates its own rows (named ``dmitems-locust-…``),
reads and updates only those, deletes only rows it created, and deletes what is
left when it stops.

    pip install locust
    dmitems serve --mode async --port 8000 --init-db
    locust -f benchmarks/locustfile.py --host http://127.0.0.1:8000 \\
        --users 100 --spawn-rate 20 --run-time 30s --headless

Distributed: start one master and any number of workers (one per core, on as
many machines as needed); the master adds up their statistics.

    locust -f benchmarks/locustfile.py --master --host http://SERVER:8000 \\
        --users 1000 --spawn-rate 100 --run-time 1m --headless --expect-workers 4
    locust -f benchmarks/locustfile.py --worker --master-host MASTER_IP   # on each worker

Set DMITEMS_API_KEY if the server requires a key on writes.
"""

from __future__ import annotations

import os
import random
import uuid

from locust import FastHttpUser, between, task

SEED_ROWS = 20
LIST_PAGE = 20


class ItemsUser(FastHttpUser):
    # No think time: like dmitems bench's closed loop, each user sends its next
    # request as soon as the previous one answers.
    wait_time = between(0, 0)

    def on_start(self) -> None:
        self.prefix = f"dmitems-locust-{uuid.uuid4().hex[:8]}-"
        self.serial = 0
        key = os.environ.get("DMITEMS_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.stable: list[int] = []
        self.fresh: list[int] = []
        for _ in range(SEED_ROWS):
            item_id = self._create(name="seed")
            if item_id is not None:
                self.stable.append(item_id)

    def on_stop(self) -> None:
        for item_id in self.stable + self.fresh:
            self.client.delete(f"/items/{item_id}", headers=self.headers, name="cleanup")

    def _create(self, name: str = "/items [create]") -> int | None:
        self.serial += 1
        body = {"name": f"{self.prefix}{self.serial}", "description": "dmitems locust row",
                "price": random.randint(1, 10_000)}
        with self.client.post("/items", json=body, headers=self.headers, name=name,
                              catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"status {response.status_code}")
                return None
            return int(response.json()["id"])

    @task(70)
    def get(self) -> None:
        if self.stable:
            self.client.get(f"/items/{random.choice(self.stable)}", name="/items/{id} [get]")

    @task(10)
    def list(self) -> None:
        self.client.get(f"/items?skip=0&limit={LIST_PAGE}&total=false", name="/items [list]")

    @task(10)
    def create(self) -> None:
        item_id = self._create()
        if item_id is not None:
            self.fresh.append(item_id)

    @task(5)
    def update(self) -> None:
        if self.stable:
            self.client.patch(f"/items/{random.choice(self.stable)}",
                              json={"price": random.randint(1, 10_000)},
                              headers=self.headers, name="/items/{id} [update]")

    @task(5)
    def delete(self) -> None:
        if self.fresh:
            self.client.delete(f"/items/{self.fresh.pop()}", headers=self.headers,
                               name="/items/{id} [delete]")
