import asyncio

async def main():
    q = asyncio.Queue()
    async def getter(name):
        try:
            print(name, "got", await q.get())
        except asyncio.CancelledError:
            print(name, "cancelled")
            raise
    a = asyncio.create_task(getter("a"))
    b = asyncio.create_task(getter("b"))
    await asyncio.sleep(0)
    q.put_nowait("item")
    a.cancel()
    await asyncio.gather(a, b, return_exceptions=True)
    print("queue size", q.qsize(), "a cancelled", a.cancelled())

    s = asyncio.Semaphore(1)
    async def waiter(name):
        try:
            await s.acquire()
            print(name, "acquired")
            s.release()
        except asyncio.CancelledError:
            print(name, "cancelled")
            raise
    await s.acquire()
    wa = asyncio.create_task(waiter("a"))
    wb = asyncio.create_task(waiter("b"))
    await asyncio.sleep(0.001)
    s.release()
    wa.cancel()
    await asyncio.gather(wa, wb, return_exceptions=True)
    print("semaphore locked", s.locked())
    await s.acquire()
    print("main acquired it too, locked", s.locked())

asyncio.run(main())
