import asyncio
import time

def work(ms):
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        pass

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0.020, lambda: print("A: 20 ms timer set before the work"))
    loop.call_soon(lambda: print("callback queued before the work"))
    print("work starts")
    work(40)
    print("work done")
    loop.call_later(0, lambda: print("B: 0 ms timer set after the work"))
    await asyncio.sleep(0.010)

asyncio.run(main())
