import asyncio

async def save(x):
    print("saving", x)
    return x

async def main():
    save(1)
    await save(2)
    c = save(3)
    print("coroutine 3 created")
    await c
    print("done")

asyncio.run(main())
