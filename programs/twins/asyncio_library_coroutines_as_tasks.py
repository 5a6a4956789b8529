import asyncio

async def main():
    loop = asyncio.get_running_loop()
    q = asyncio.Queue(0)
    ev = asyncio.Event()
    l = asyncio.Lock()
    t = asyncio.create_task(q.get())
    print("task done:", t.done())
    loop.call_later(0.005, q.put_nowait, "x")
    loop.call_soon(lambda: print("callback's current task:", asyncio.current_task()))
    print("got:", await t)
    loop.call_later(0.005, ev.set)
    print("gathered:", await asyncio.gather(ev.wait(), l.acquire(), asyncio.sleep(0.001, "slept")))
    print("lock held:", l.locked(), "event set:", ev.is_set())

asyncio.run(main())
