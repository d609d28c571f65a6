"""The worker app's wiring that needs no broker: what it holds, and for how long."""

import asyncio
import gc
import weakref

from jiandu.settings import Settings
from streams.app import create_app
from streams.ingest import Ingestor


def test_a_rebalance_marks_the_ingestor_stale_and_a_gone_app_lets_go_of_it(tmp_path):
    ingestor = Ingestor(None)
    ingestor.stale = False
    app = create_app(Settings(data_dir=tmp_path), "127.0.0.1:9", ingestor)
    asyncio.run(app.on_partitions_assigned.send(assigned=set()))
    assert ingestor.stale  # partitions may have moved here: reload heads and ids first

    held = weakref.ref(ingestor)
    del app, ingestor
    gc.collect()
    # mode keeps signal receivers on the App class: a strong one kept the ingestor (its known
    # event ids) alive after the app was gone
    assert held() is None
