import asyncio, time

async def main():
    loop = asyncio.get_running_loop()
    ev = asyncio.Event()
    async def waiter(name):
        print(name, "waits")
        r = await ev.wait()
        print(name, "woke", r)
    ws = [asyncio.create_task(waiter("w1")), asyncio.create_task(waiter("w2"))]
    await asyncio.sleep(0.001)
    print("set:", ev.is_set())
    ev.set()
    print("after set:", ev.is_set())
    await asyncio.gather(ws[0], ws[1])
    ev.clear()
    print("cleared:", ev.is_set())

    l = asyncio.Lock()
    async def critical(name):
        print(name, "wants the lock")
        await l.acquire()
        try:
            print(name, "holds it")
            await asyncio.sleep(0.005)
        finally:
            l.release()
            print(name, "released")
    await asyncio.gather(critical("a"), critical("b"), critical("c"))
    print("locked:", l.locked())
    try:
        l.release()
    except Exception as e:
        print(type(e).__name__, e)

    s = asyncio.Semaphore(2)
    async def limited(name, ms):
        await s.acquire()
        print(name, "in")
        await asyncio.sleep(ms / 1000)
        print(name, "out")
        s.release()
    await asyncio.gather(limited("x", 10), limited("y", 40), limited("z", 10))
    print("semaphore locked:", s.locked())

asyncio.run(main())
