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
    s.release()

    l = asyncio.Lock()
    async def locker(name):
        try:
            await l.acquire()
            print(name, "locked it")
            l.release()
        except asyncio.CancelledError:
            print(name, "cancelled")
            raise
    await l.acquire()
    la = asyncio.create_task(locker("a"))
    lb = asyncio.create_task(locker("b"))
    await asyncio.sleep(0.001)
    l.release()
    la.cancel()
    await asyncio.gather(la, lb, return_exceptions=True)
    print("lock locked", l.locked())

asyncio.run(main())
