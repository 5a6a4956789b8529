import asyncio

async def main():
    q = asyncio.Queue(2)
    print("maxsize", q.maxsize, "of an unbounded queue", asyncio.Queue().maxsize, "full", q.full(), "empty", q.empty())
    async def producer():
        for i in range(4):
            print("put", i, "qsize", q.qsize())
            await q.put(i)
        print("producer done", q)
    async def consumer():
        await asyncio.sleep(0.010)
        while True:
            item = await q.get()
            print("got", item)
            await asyncio.sleep(0.005)
            q.task_done()
            if item == 3:
                break
    p = asyncio.create_task(producer())
    c = asyncio.create_task(consumer())
    await asyncio.sleep(0.001)
    print("full:", q.full(), q)
    try:
        q.put_nowait(99)
    except Exception as e:
        print("put_nowait:", type(e).__name__)
    await q.join()
    print("joined, empty:", q.empty())
    try:
        q.get_nowait()
    except Exception as e:
        print("get_nowait:", type(e).__name__)
    try:
        q.task_done()
    except Exception as e:
        print(type(e).__name__, e)
    await asyncio.gather(p, c)

asyncio.run(main())
