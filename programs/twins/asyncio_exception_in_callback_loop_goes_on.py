import asyncio

def throws(name):
    print(name, "throws")
    raise Exception("boom")

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0.010, lambda: throws("timer 1"))
    loop.call_later(0.030, lambda: print("timer 2 still runs"))
    loop.call_soon(lambda: throws("callback"))
    loop.call_soon(lambda: print("next callback still runs"))
    await asyncio.sleep(0.050)
    print("main ends")

asyncio.run(main())
